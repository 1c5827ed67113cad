"""FROC as the MIDOG 2025 evaluator computes it.

Sensitivity vs mean false positives per image, over 40 probability thresholds
evenly spaced between the lowest and highest prediction probability (every
prediction, whatever its name, kept when probability >= threshold), matched with
the official greedy rule; the curve is sorted by FP/image, linearly interpolated
at 50 points over [0, 8] FP/image (recall 0 left of the first point, the last
recall right of the last) and integrated with the trapezoid rule. The score is
that area (0 to 8), not normalised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.integrate import trapezoid

from mitodet.evaluate.matching import score_detection

MAX_FP = 8
N_THRESHOLDS = 40
N_EVAL = 50


def froc_curve(gts: Sequence[Sequence], preds: Sequence[Sequence], radius: float, n_thresholds: int = N_THRESHOLDS):
    """(thresholds, mean FP per image, sensitivity) at the official thresholds; None if no predictions."""
    probs = [p[2] for pred in preds for p in pred]
    if not probs:
        return None
    lo, hi = min(probs), max(probs)
    thresholds = [lo] if lo == hi else np.linspace(lo, hi, n_thresholds).tolist()
    fppi, sens = [], []
    for t in thresholds:
        tp = fn = 0
        fps = []
        for gt, pred in zip(gts, preds, strict=False):
            s = score_detection(gt, [p for p in pred if p[2] >= t], radius)
            tp += s.true_positives
            fn += s.false_negatives
            fps.append(s.false_positives)
        sens.append(tp / (tp + fn + 1e-6))
        fppi.append(float(np.mean(fps)))
    return np.asarray(thresholds), np.asarray(fppi), np.asarray(sens)


def froc_auc(gts: Sequence[Sequence], preds: Sequence[Sequence], radius: float, max_fp: float = MAX_FP) -> float:
    """Area under the FROC curve over [0, max_fp] FP/image (NaN without predictions)."""
    curve = froc_curve(gts, preds, radius)
    if curve is None:
        return float("nan")
    _, fppi, sens = curve
    order = np.argsort(fppi)
    x = np.linspace(0, max_fp, N_EVAL)
    y = np.interp(x, fppi[order], sens[order], left=0, right=sens[order][-1])
    return float(trapezoid(y, x))  # scipy.integrate: the same rule on NumPy 1.x (no np.trapezoid) and 2.x
