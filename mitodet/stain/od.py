"""Optical density (Beer-Lambert) conversions, numpy and torch.

Convention: ``OD = -log10((I + 1) / 256)`` for 8-bit intensities ``I``, so white
(255) is exactly 0 and black (0) is log10(256) ~ 2.41. ``od_to_rgb`` is the exact
inverse on uint8 input (``I = 256 * 10**-OD - 1``, rounded and clipped).
"""

from __future__ import annotations

import numpy as np

OD_MAX = float(np.log10(256.0))  # OD of a black pixel
# 256-entry lookup table: a uint8 -> OD conversion is a gather, not a log per pixel.
_OD_LUT = (-np.log10((np.arange(256, dtype=np.float64) + 1.0) / 256.0)).astype(np.float32)


def rgb_to_od(rgb: np.ndarray) -> np.ndarray:
    """RGB image (uint8, or float in [0, 255]) -> float32 optical density of the same shape."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return _OD_LUT[rgb]
    return (-np.log10((rgb.astype(np.float32) + 1.0) / 256.0)).astype(np.float32)


def od_to_rgb(od: np.ndarray) -> np.ndarray:
    """Optical density -> uint8 RGB (clipped to [0, 255])."""
    i = 256.0 * np.power(10.0, -np.asarray(od, dtype=np.float32)) - 1.0
    return np.clip(np.rint(i), 0, 255).astype(np.uint8)


def rgb_to_od_torch(rgb):
    """Torch version of :func:`rgb_to_od` for intensities in [0, 255] (any shape, differentiable)."""
    import torch

    return -torch.log10((rgb.to(torch.float32) + 1.0) / 256.0)


def od_to_rgb_torch(od):
    """Torch version of :func:`od_to_rgb`, returning float intensities in [0, 255] (not rounded)."""
    import torch

    return torch.clamp(256.0 * torch.pow(10.0, -od) - 1.0, 0.0, 255.0)
