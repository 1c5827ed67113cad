"""Candidate detections: local maxima of the probability map (the paper's inference)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max


def local_maxima(prob: np.ndarray, min_distance_cells: int, floor: float = 0.0) -> np.ndarray:
    """(row, col) of local maxima at least ``min_distance_cells`` apart (Chebyshev), probability
    > ``floor``, strongest first: exactly scikit-image's ``peak_local_max`` (tested), which keeps
    the stronger of two close peaks and, of equal ones (plateaus), the first in raster order.

    Its spacing pass loops over every maximum in Python with a k-d tree query each; a maximum
    closer than the distance to another can only be an equal one, so the same greedy pass runs
    here over an occupancy grid (fast also on the plateaus of a flat background)."""
    if prob.size == 0:
        return np.zeros((0, 2), int)
    md = max(1, int(min_distance_cells))
    if prob.size == 1:
        rc = peak_local_max(prob, min_distance=md, threshold_abs=floor, threshold_rel=None, exclude_border=False)
        return rc.reshape(-1, 2).astype(int)
    peak = prob == ndi.maximum_filter(prob, size=2 * md + 1, mode="nearest")
    if peak.all():  # a constant map has no peak (as in scikit-image)
        return np.zeros((0, 2), int)
    peak &= prob > floor
    rc = np.argwhere(peak)
    rc = rc[np.argsort(-prob[peak], kind="stable")]  # strongest first, ties in raster order
    if md == 1 or len(rc) < 2:
        return rc
    # greedy spacing: drop a maximum within Chebyshev distance < md of one kept before it
    blocked = np.zeros(prob.shape, bool)
    keep = np.zeros(len(rc), bool)
    r = md - 1
    for k, (i, j) in enumerate(rc):
        if not blocked[i, j]:
            keep[k] = True
            blocked[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1] = True
    return rc[keep]
