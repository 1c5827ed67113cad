"""How sure an official F1 is at this number of images: 95 % bootstrap intervals.

The images are resampled, not the figures: the official F1 pools TP / FP / FN over images, and
the figures of one image (its stain, its tumour) are not independent. Fewer than two images give
no interval (NaN): every resample of one image is that image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RESAMPLES = 2000
Counts = tuple[float, float, float]  # (tp, fp, fn) of one image


def pooled_f1(tp: float, fp: float, fn: float) -> float:
    """The official F1 of counts pooled over images (NaN when there is nothing to count)."""
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def _interval(values: list[float]) -> tuple[float, float]:
    v = np.array(values, float)
    v = v[np.isfinite(v)]
    return (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if len(v) else (float("nan"),) * 2


def f1_interval(per_image: Sequence[Counts], n: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the pooled F1 of ``per_image`` counts (tp, fp, fn)."""
    if len(per_image) < 2:
        return float("nan"), float("nan")
    c = np.array(per_image, float)
    rng = np.random.default_rng(seed)
    return _interval([pooled_f1(*c[rng.integers(0, len(c), len(c))].sum(0)) for _ in range(n)])


def gain_interval(
    before: Mapping[str, Counts], after: Mapping[str, Counts], n: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95 % interval of F1(after) - F1(before) on the same images (paired resamples)."""
    keys = sorted(before)
    if len(keys) < 2:
        return float("nan"), float("nan")
    b, a = np.array([before[k] for k in keys], float), np.array([after[k] for k in keys], float)
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(n):
        idx = rng.integers(0, len(keys), len(keys))
        gains.append(pooled_f1(*a[idx].sum(0)) - pooled_f1(*b[idx].sum(0)))
    return _interval(gains)
