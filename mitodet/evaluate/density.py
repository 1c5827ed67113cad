"""F1 at a realistic mitosis density, from sensitivity on mitoses and false detections per area.

Crops centred on mitoses give a sensitivity ``s`` but say little about whole tissue; tissue
without labels gives false detections per mm² ``f``. On tissue holding ``d`` mitoses per mm²
a detector with these rates finds ``d·s`` true positives, misses ``d·(1 - s)`` and raises ``f``
false positives per mm², so

    F1 = 2·d·s / (2·d·s + d·(1 - s) + f)

(d = 11.1 per mm² by default: the MIDOG 2022 training set, 9501 mitoses in 354 images of
about 2.4 mm² each). Thresholds and checkpoints are chosen by this F1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mitodet.evaluate.matching import score_detection

MIDOG_DENSITY = 11.1  # mitotic figures per mm² of MIDOG 2022 training images


def density_f1(s: float, f: float, d: float = MIDOG_DENSITY) -> float:
    """F1 implied by sensitivity ``s`` and ``f`` false detections per mm² at ``d`` mitoses per mm²."""
    denominator = 2 * d * s + d * (1 - s) + f
    return 2 * d * s / denominator if denominator > 0 else 0.0


def _counts(truth, pred, radius, t, area):
    tp = fn = fp = 0
    for key in truth.keys() | pred.keys():
        s = score_detection(truth.get(key, []), [p for p in pred.get(key, []) if p[2] >= t], radius)
        tp, fn = tp + s.true_positives, fn + s.false_negatives
        if area.get(key, 0.0) > 0:  # an image without area is labelled at its mitoses only
            fp += s.false_positives
    return tp, fn, fp


def density_scores(
    truth: Mapping[str, Sequence],
    pred: Mapping[str, Sequence],
    area_mm2: Mapping[str, float],
    radius: float,
    threshold: float,
    density: float = MIDOG_DENSITY,
) -> dict:
    """s, f and F1 at ``density`` of the images in ``area_mm2`` at one threshold.

    ``truth``: image -> [(x, y)] (tissue without labels: []); ``pred``: image -> [(x, y, p)];
    coordinates in one unit per image (e.g. µm), ``radius`` in the same unit. An image of area 0
    (one whose other cells are unlabelled) counts for s only: its unmatched detections are not
    counted as false."""
    keys = set(area_mm2)
    tp, fn, fp = _counts(
        {k: truth.get(k, []) for k in keys}, {k: pred.get(k, []) for k in keys}, radius, threshold, area_mm2
    )
    area = math.fsum(area_mm2[k] for k in keys)  # exact: the same whatever order the set iterates in
    s = tp / (tp + fn) if tp + fn else float("nan")
    f = fp / area if area > 0 else float("nan")
    return {
        "tp": tp,
        "fn": fn,
        "fp": fp,
        "area_mm2": area,
        "sensitivity": s,
        "fp_per_mm2": f,
        "f1_density": density_f1(s, f, density) if tp + fn and area > 0 else float("nan"),
    }


def candidate_thresholds(pred: Mapping[str, Sequence], keys, max_thresholds: int = 100) -> list[float]:
    """The distinct probabilities of the predictions of images ``keys``, thinned to quantiles
    when there are more than ``max_thresholds``: the thresholds a search tries."""
    probs = np.unique([float(p[2]) for k in keys for p in pred.get(k, [])])
    if len(probs) > max_thresholds:
        probs = np.unique(np.quantile(probs, np.linspace(0, 1, max_thresholds), method="nearest"))
    return probs.tolist()


def best_density_threshold(
    truth: Mapping[str, Sequence],
    pred: Mapping[str, Sequence],
    area_mm2: Mapping[str, float],
    radius: float,
    density: float = MIDOG_DENSITY,
    max_thresholds: int = 100,
) -> dict:
    """The threshold maximising :func:`density_f1` over the images of ``area_mm2`` (mitoses in
    ``truth`` give s, unmatched detections in images with area count for f). Returns the scores there plus
    ``"threshold"`` and ``"curve"`` [(t, F1)]; quantiles of the probabilities are tried when there
    are more than ``max_thresholds`` distinct ones."""
    best: dict = {"threshold": 1.0, "f1_density": 0.0}
    curve = []
    for t in candidate_thresholds(pred, area_mm2, max_thresholds):
        sc = density_scores(truth, pred, area_mm2, radius, t, density)
        curve.append((t, sc["f1_density"]))
        if sc["f1_density"] > best["f1_density"]:
            best = {"threshold": t, **sc}
    if "sensitivity" not in best:
        best.update(density_scores(truth, pred, area_mm2, radius, 1.0 + 1e-9, density))
        best["threshold"] = 1.0
    best["curve"] = curve
    return best
