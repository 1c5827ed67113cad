"""Greedy one-to-one point matching, exactly as the official MIDOG evaluators do it.

The official containers call ``evalutils.scorers.score_detection`` (scikit-learn
BallTree ``query_radius(r, sort_results=True)``): each ground-truth point, in
ground-truth order, takes its nearest prediction (distance <= radius) that is
still unmatched. Re-implemented here with scipy's KD-tree so that neither
evalutils nor scikit-learn is a dependency; the rule is identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

EPS = 1e-6  # the 2022/2025 evaluators add this to every ratio


@dataclass(frozen=True)
class DetectionScore:
    """TP/FN/FP counts; adding two gives the pooled counts."""

    true_positives: int = 0
    false_negatives: int = 0
    false_positives: int = 0

    def __add__(self, other: DetectionScore) -> DetectionScore:
        return DetectionScore(
            self.true_positives + other.true_positives,
            self.false_negatives + other.false_negatives,
            self.false_positives + other.false_positives,
        )

    @property
    def precision(self) -> float:
        return self.true_positives / (self.true_positives + self.false_positives + EPS)

    @property
    def recall(self) -> float:
        return self.true_positives / (self.true_positives + self.false_negatives + EPS)

    @property
    def f1(self) -> float:
        tp = self.true_positives
        return (2 * tp + EPS) / (2 * tp + self.false_positives + self.false_negatives + EPS)

    def as_dict(self) -> dict:
        return {
            "true_positives": self.true_positives,
            "false_negatives": self.false_negatives,
            "false_positives": self.false_positives,
        }


def _xy(points) -> np.ndarray:
    if len(points) == 0:
        return np.zeros((0, 2))
    return np.array([p[:2] for p in points], dtype=float)


def match_points(ground_truth, predictions, radius: float) -> np.ndarray:
    """Greedy matching; returns, per ground-truth point, the matched prediction index or -1.

    Points are (x, y[, z]) sequences; only x and y are used (the evaluators set z=0).
    """
    gt, pr = _xy(ground_truth), _xy(predictions)
    match = np.full(len(gt), -1, dtype=int)
    if len(gt) == 0 or len(pr) == 0:
        return match
    tree = cKDTree(pr)
    taken = np.zeros(len(pr), dtype=bool)
    # query_ball_point uses distance <= r, like BallTree.query_radius.
    for g, hits in enumerate(tree.query_ball_point(gt, r=radius)):
        if not hits:
            continue
        hits = np.asarray(hits)
        d = np.sqrt(((pr[hits] - gt[g]) ** 2).sum(axis=1))
        for h in hits[np.lexsort((hits, d))]:  # nearest first, ties by index
            if not taken[h]:
                taken[h] = True
                match[g] = h
                break
    return match


def score_detection(ground_truth, predictions, radius: float) -> DetectionScore:
    """TP/FN/FP of one image (evalutils ``score_detection`` semantics)."""
    n_gt, n_pr = len(ground_truth), len(predictions)
    if n_gt == 0 or n_pr == 0:
        return DetectionScore(0, n_gt, n_pr)
    tp = int((match_points(ground_truth, predictions, radius) >= 0).sum())
    return DetectionScore(tp, n_gt - tp, n_pr - tp)


def score(
    truth: Mapping[str, Sequence],
    pred: Mapping[str, Sequence],
    radius: float,
    threshold: float | None = None,
) -> dict:
    """Pooled scores over images, in any unit (pixels for our sets, mm for MIDOG).

    ``truth``: image id -> [(x, y), ...]; ``pred``: image id -> [(x, y, probability), ...]
    (probability optional). Predictions below ``threshold`` are dropped. Images missing
    from ``pred`` have no detections; images only in ``pred`` have no ground truth.
    Returns ``{"tp", "fp", "fn", "precision", "recall", "f1", "per_image": {id: DetectionScore}}``.
    """
    total = DetectionScore()
    per_image = {}
    for key in list(truth) + [k for k in pred if k not in truth]:
        pts = [p for p in pred.get(key, []) if threshold is None or len(p) < 3 or p[2] >= threshold]
        s = score_detection(truth.get(key, []), pts, radius)
        per_image[key] = s
        total = total + s
    return {
        "tp": total.true_positives,
        "fp": total.false_positives,
        "fn": total.false_negatives,
        "precision": total.precision,
        "recall": total.recall,
        "f1": total.f1,
        "per_image": per_image,
    }


def best_threshold(
    truth: Mapping[str, Sequence], pred: Mapping[str, Sequence], radius: float, max_thresholds: int = 400
) -> dict:
    """Threshold maximising pooled F1 (the paper's calibration on the validation split).

    Every distinct prediction probability is tried (greedy matching makes F1 non-monotone,
    so no shortcut); above ``max_thresholds`` distinct values, that many quantiles.
    Returns ``{"threshold", "f1", "precision", "recall", "curve": [(t, f1), ...]}``.
    """
    probs = np.unique([float(p[2]) for pts in pred.values() for p in pts])
    if len(probs) > max_thresholds:
        probs = np.unique(np.quantile(probs, np.linspace(0, 1, max_thresholds), method="nearest"))
    best = {"threshold": 1.0, "f1": 0.0, "precision": 0.0, "recall": 0.0}
    curve = []
    for t in probs.tolist():
        s = score(truth, pred, radius, threshold=t)
        curve.append((t, s["f1"]))
        if s["f1"] > best["f1"]:
            best = {"threshold": t, "f1": s["f1"], "precision": s["precision"], "recall": s["recall"]}
    best["curve"] = curve
    return best
