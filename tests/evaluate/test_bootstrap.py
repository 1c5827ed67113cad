"""Bootstrap intervals of the pooled official F1 over images."""

import numpy as np
import pytest

from mitodet.evaluate.bootstrap import f1_interval, gain_interval, pooled_f1


def test_pooled_f1():
    assert pooled_f1(3, 1, 1) == pytest.approx(0.75)
    assert np.isnan(pooled_f1(0, 0, 0))


def test_one_image_gives_no_interval():
    """One image resamples to itself: no interval (NaN), so nothing prints "+1.000 to +1.000"
    from one figure."""
    assert all(np.isnan(gain_interval({"a": (0, 0, 1)}, {"a": (1, 0, 0)})))
    assert all(np.isnan(f1_interval([(1, 0, 0)])))
    lo, hi = gain_interval({"a": (0, 0, 1), "b": (1, 0, 0)}, {"a": (1, 0, 0), "b": (1, 0, 0)})
    assert 0.0 <= lo <= hi <= 1.0


def test_interval_holds_the_pooled_f1_and_narrows_with_more_images():
    """The same mix of images, 10 against 40 of them: the interval contains the pooled F1 and is
    about half as wide with four times the images (1 / sqrt(n))."""
    mix = [(2, 1, 0), (0, 2, 1), (1, 0, 1), (3, 1, 1), (0, 0, 0)]
    f1 = pooled_f1(*np.sum(mix, axis=0))
    few, many = f1_interval(mix * 2), f1_interval(mix * 8)
    assert few[0] < f1 < few[1] and many[0] < f1 < many[1]
    ratio = (many[1] - many[0]) / (few[1] - few[0])
    assert 0.35 < ratio < 0.65
    assert f1_interval(mix * 2, seed=1) != few  # seeded: another seed, other resamples
    assert f1_interval(mix * 2) == few


def test_evaluate_says_how_sure_its_f1_is():
    """`mitodet evaluate` prints the overall F1 with its interval, or why there is none."""
    from mitodet.cli.evaluate import _f1_interval_line

    def result(per):
        metrics = [{"true_positives": t, "false_positives": p, "false_negatives": n} for t, p, n in per]
        tp, fp, fn = np.sum(per, axis=0)
        return {"results": [{"metrics": m} for m in metrics], "aggregates": {"f1_score": pooled_f1(tp, fp, fn)}}

    assert _f1_interval_line(result([(1, 0, 1)])) == "F1 0.6667; no interval (one image cannot be resampled)"
    line = _f1_interval_line(result([(2, 1, 0), (0, 2, 1), (3, 1, 1)]))  # 5 TP, 4 FP, 2 FN
    assert line.startswith("F1 0.6250; 95 % interval ") and line.endswith("(bootstrap over the 3 images)")
