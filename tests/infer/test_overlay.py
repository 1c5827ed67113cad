"""The overlay: scores that separate around the threshold, and a font that has µ (#20 items 2, 3)."""

import numpy as np

from mitodet.infer.outputs import _font, _label, write_overlay
from mitodet.schema import Detection


def test_labels_are_logit_margins_over_the_threshold():
    assert _label(0.9994, 0.998) == "+1.2" and _label(0.9981, 0.998) == "+0.1" and _label(0.99, 0.998) == "-1.6"
    assert _label(0.5, None) == "0.500"  # no threshold: the probability


def test_the_overlay_font_draws_micro_and_squared():
    f = _font(20)
    tofu = f.getmask("\ufffd").getbbox()
    assert f.getmask("µ").getbbox() != tofu and f.getmask("²").getbbox() != tofu


def test_overlay_is_written(tmp_path):
    img = np.full((300, 300, 3), 230, np.uint8)
    write_overlay(tmp_path / "o.png", img, [Detection(150, 150, 0.9994)], 30, title="t", subtitle="m", threshold=0.998)
    assert (tmp_path / "o.png").stat().st_size > 0
