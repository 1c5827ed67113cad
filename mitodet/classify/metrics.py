"""Binary classification scores of atypical (positive) vs normal figures: the benchmark's
balanced accuracy, sensitivity, specificity, AUROC and a confusion table.

Written here rather than taken from scikit-learn (not a dependency): each is a few lines, and
the rank-sum AUC is the one the detector's patch validation reports too.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged."""
    n1, n0 = int(labels.sum()), int((1 - labels).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def confusion(p: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, int]:
    """Counts of true/false atypical/normal calls at ``threshold`` (atypical when p >= threshold)."""
    call, y = np.asarray(p) >= threshold, np.asarray(y, bool)
    return {
        "tp": int((call & y).sum()),
        "fn": int((~call & y).sum()),
        "fp": int((call & ~y).sum()),
        "tn": int((~call & ~y).sum()),
    }


def scores(p: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    """Balanced accuracy, sensitivity (atypical recall), specificity, AUROC, counts, confusion."""
    c = confusion(p, y, threshold)
    pos, neg = c["tp"] + c["fn"], c["tn"] + c["fp"]
    sens = c["tp"] / pos if pos else float("nan")
    spec = c["tn"] / neg if neg else float("nan")
    return {
        "balanced_accuracy": (sens + spec) / 2,
        "sensitivity": sens,
        "specificity": spec,
        "auroc": auc(np.asarray(p, float), np.asarray(y, int)),
        "atypical": pos,
        "normal": neg,
        "confusion": c,
    }


def balanced_accuracy(p: np.ndarray, y: np.ndarray, threshold: float) -> float:
    return float(scores(p, y, threshold)["balanced_accuracy"])


def best_threshold(p: np.ndarray, y: np.ndarray, groups: list[str] | None = None) -> tuple[float, float]:
    """The threshold (a midpoint between sorted probabilities) that maximises the balanced
    accuracy -- or, with ``groups``, the MEAN of the groups' balanced accuracies, so a small
    source weighs as much as a large one -> ``(threshold, that balanced accuracy)``."""
    p, y = np.asarray(p, float), np.asarray(y, bool)
    u = np.unique(p)
    cands = np.concatenate([[0.0], (u[1:] + u[:-1]) / 2 if len(u) > 1 else [], [1.0]]) if len(u) else np.array([0.5])
    keys = [None] if groups is None else sorted(set(groups))
    g = np.asarray(groups) if groups is not None else None
    best = (0.5, -1.0)
    for t in cands:
        vals = []
        for k in keys:
            m = slice(None) if k is None else g == k
            yk = y[m]
            if yk.all() or not yk.any():
                continue
            vals.append(balanced_accuracy(p[m], yk, t))
        v = float(np.mean(vals)) if vals else float("nan")
        if v > best[1]:
            best = (float(t), v)
    return best
