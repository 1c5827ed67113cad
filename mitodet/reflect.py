"""Reflection padding: one rule for the whole project, ``np.pad(mode="reflect")``.

The image is mirrored about its edge pixels without repeating them (``d c b | a b c d | c b a``),
periodically for borders wider than the image. Detection pads tiles with it, training gathers
windows with it, and mining crops patches with it, so a window means the same pixels everywhere.
"""

from __future__ import annotations

import numpy as np


def reflect_index(idx, n):
    """Indices into an axis of length ``n`` as reflection extends it.

    Works on numpy arrays and on torch tensors alike (``n`` may be a tensor broadcasting
    against ``idx``, e.g. one length per image of a batch).
    """
    period = 2 * (n - 1) + (n == 1)  # 1 for a single-pixel axis: every index maps to 0
    r = idx % period  # floor modulo (non-negative) in numpy and torch
    return r - (r >= n) * (2 * r - period)


def padded_window(image: np.ndarray, y: int, x: int, h: int, w: int) -> np.ndarray:
    """The ``h x w`` window at (y, x) of the reflection-extended ``image`` (coordinates may be
    negative or run past the edge); a plain view when the window lies inside the image."""
    H, W = image.shape[:2]
    if y >= 0 and x >= 0 and y + h <= H and x + w <= W:
        return image[y : y + h, x : x + w]
    rows = reflect_index(np.arange(y, y + h), H)
    cols = reflect_index(np.arange(x, x + w), W)
    return image[np.ix_(rows, cols)]  # one gather: a window-sized copy


def centred_window(image: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    """``size x size`` window centred on pixel (x, y) (rounded), reflection beyond the edges."""
    half = size // 2
    return padded_window(image, int(round(y)) - half, int(round(x)) - half, size, size)
