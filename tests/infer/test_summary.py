"""The hotspot and the per-input summary, on point layouts whose answer is known."""

import math

import numpy as np

from mitodet.infer.summary import hotspot, hotspot_radius_px, summarize
from mitodet.schema import Detection


def _ring(cx, cy, r, n, phase=0.0):
    a = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


def test_hotspot_known_answer():
    R = 100.0
    # 5 figures on a ring of radius 0.97 R: only a circle centred (almost) on the ring's centre holds
    # them all, and no circle centred on a figure does (they are up to 1.84 R apart)
    ring = _ring(1000, 500, 0.97 * R, 5)
    # 4 figures in a tight cluster elsewhere, and 3 spread ones
    cluster = np.array([[300, 300], [310, 305], [295, 290], [305, 315]], float)
    spread = np.array([[0, 0], [2000, 2000], [1500, 100]], float)
    hs = hotspot(np.concatenate([spread, cluster, ring]), R)
    assert hs.count == 5 and math.hypot(hs.x - 1000, hs.y - 500) <= 0.25 * R
    assert all(math.hypot(x - hs.x, y - hs.y) <= R * (1 + 1e-9) for x, y in ring)
    # the best circle is not centred on a figure: pair circles are searched
    assert min(math.hypot(x - hs.x, y - hs.y) for x, y in ring) > 0.5 * R


def test_hotspot_ties_and_edges():
    assert hotspot(np.zeros((0, 2)), 10) is None
    one = hotspot(np.array([[5.0, 7.0]]), 10)
    assert (one.count, one.x, one.y) == (1, 5.0, 7.0)
    # two figures exactly a diameter apart fit one circle (edges count)
    two = hotspot(np.array([[0.0, 0.0], [20.0, 0.0]]), 10)
    assert two.count == 2 and abs(two.x - 10) < 1e-6 and abs(two.y) < 1e-6
    # equal counts: the heavier circle wins
    xy = np.array([[0.0, 0.0], [5.0, 0.0], [500.0, 0.0], [505.0, 0.0]])
    hs = hotspot(xy, 10, weights=np.array([0.9, 0.9, 0.99, 0.99]))
    assert hs.count == 2 and hs.x > 400
    # a circle larger than its cluster sits on it
    hs = hotspot(np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 3.0]]), 1000)
    assert hs.count == 3 and math.hypot(hs.x - 2, hs.y - 1) < 3


def test_summary_in_mm():
    mpp = 0.25
    r = hotspot_radius_px(2.0, mpp)
    assert abs(math.pi * (r * mpp / 1000) ** 2 - 2.0) < 1e-9  # a 2 mm² circle
    mf = [Detection(1000 + 10 * k, 2000, 0.99) for k in range(6)] + [Detection(30000, 30000, 0.95)]
    dets = mf + [Detection(50, 50, 0.4, "non-mitotic figure")]
    s, hs = summarize("x.tif", dets, mpp, (40000, 40000), tissue_mm2=12.5, tissue_fraction=0.125)
    assert (s.mitotic_figures, s.candidates, s.hotspot_figures) == (7, 8, 6)
    assert abs(s.figures_per_mm2 - 7 / 12.5) < 1e-4
    assert abs(s.hotspot_x_mm - 1025 * mpp / 1000) < 0.01 and abs(s.hotspot_y_mm - 0.5) < 0.01
    empty, none = summarize("y.tif", [], mpp, (10, 10), tissue_mm2=0.0, tissue_fraction=0.0)
    assert none is None and empty.figures_per_mm2 is None and empty.row()["hotspot_x_mm"] == ""


def test_small_specimens_get_no_hotspot_and_no_density():
    mpp = 0.25
    dets = [Detection(100, 100, 0.99), Detection(120, 130, 0.99)]
    patch, _ = summarize("patch.png", dets, mpp, (256, 256), tissue_mm2=0.0041, tissue_fraction=1.0)
    assert patch.hotspot_figures is None and patch.hotspot_x_mm is None and patch.figures_per_mm2 is None
    assert patch.row()["hotspot_figures"] == "" and patch.mitotic_figures == 2
    slide, hs = summarize("slide.svs", dets, mpp, (2220, 2967), tissue_mm2=0.59, tissue_fraction=0.36)
    assert hs is None and slide.hotspot_figures is None  # a 2 mm² circle in 0.59 mm² of tissue
    assert slide.figures_per_mm2 == round(2 / 0.59, 4)
    big, hs = summarize("big.svs", dets, mpp, (20000, 20000), tissue_mm2=2.5, tissue_fraction=0.1)
    assert hs is not None and big.hotspot_figures == 2


def test_significant_digits_never_print_zero():
    from mitodet.schema import significant

    assert [significant(v) for v in (0.0041, 0.594084, 12.345, 0.0)] == ["0.00410", "0.594", "12.3", "0"]
