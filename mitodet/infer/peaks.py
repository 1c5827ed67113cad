"""Candidate detections: local maxima of the probability map (the paper's inference)."""

from __future__ import annotations

import numpy as np
from skimage.feature import peak_local_max


def local_maxima(prob: np.ndarray, min_distance_cells: int, floor: float = 0.0) -> np.ndarray:
    """(row, col) of local maxima at least ``min_distance_cells`` apart (Chebyshev), probability
    >= ``floor``, strongest first. scikit-image keeps the stronger of two close peaks."""
    if prob.size == 0:
        return np.zeros((0, 2), int)
    rc = peak_local_max(
        prob,
        min_distance=max(1, int(min_distance_cells)),
        threshold_abs=floor,
        threshold_rel=None,
        exclude_border=False,
    )
    if len(rc) == 0:
        return np.zeros((0, 2), int)
    order = np.argsort(-prob[rc[:, 0], rc[:, 1]], kind="stable")
    return rc[order]
