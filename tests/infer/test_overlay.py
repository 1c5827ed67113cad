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


def _intersect(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_labels_of_a_cluster_cover_no_circle_and_no_other_label():
    """#20 item 3: five figures side by side (a cluster, as in a hotspot): each label finds a
    place beside its own circle that covers neither the other circles nor the other labels."""
    from mitodet.infer.outputs import place_labels

    r, size = 20.0, (40.0, 14.0)
    centres = [(200.0 + 45 * i, 200.0 + (i % 2) * 30) for i in range(5)]
    corners = place_labels(centres, [size] * 5, r, (600, 600))
    labels = [(x, y, x + size[0], y + size[1]) for x, y in corners]
    circles = [(x - r, y - r, x + r, y + r) for x, y in centres]
    for i, box in enumerate(labels):
        assert all(not _intersect(box, c) for c in circles), i
        assert all(not _intersect(box, other) for j, other in enumerate(labels) if j != i), i
        (cx, cy), (lx, ly) = centres[i], ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        assert abs(lx - cx) < 3 * r and abs(ly - cy) < 3 * r  # still beside its own circle


def test_a_label_at_the_image_edge_stays_inside():
    from mitodet.infer.outputs import place_labels

    ((x, y),) = place_labels([(595.0, 5.0)], [(40.0, 14.0)], 20.0, (600, 600))
    assert x >= 0 and y >= 0 and x + 40 <= 600 and y + 14 <= 600
