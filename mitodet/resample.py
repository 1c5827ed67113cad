"""Resampling an image to the model's pixel spacing: one rule for training and detection.

Training reads every source at its known spacing and resamples it to the model spacing with
this function; ``mitodet detect`` does the same to its input, and the slide reader uses the
same filter for the regions it reads. So a mitosis reaches the network at the same scale and
with the same interpolation, whichever side of the pipeline it is on.

Pillow does the work (uint8 in, uint8 out: no float copy of a large image, as scikit-image's
``resize`` would make); its filters widen with the reduction factor, so shrinking is anti-aliased.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

RESAMPLE_TOLERANCE = 0.02  # spacings within 2 % of the target are used as they are
FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
DEFAULT_INTERPOLATION = "bilinear"


def needs_resampling(mpp: float, target_mpp: float) -> bool:
    return abs(mpp / target_mpp - 1) > RESAMPLE_TOLERANCE


def resample(
    image: np.ndarray, mpp: float, target_mpp: float, interpolation: str = DEFAULT_INTERPOLATION
) -> tuple[np.ndarray, float, float]:
    """``image`` (HxWx3 uint8 at ``mpp`` µm/px) at ``target_mpp`` -> (image, sx, sy), where
    sx, sy are input pixels per output pixel: output pixel centre x' maps to input
    ``(x' + 0.5) * sx - 0.5`` (and :func:`to_input` / :func:`to_output` convert points)."""
    if not needs_resampling(mpp, target_mpp):
        return image, 1.0, 1.0
    H, W = image.shape[:2]
    h, w = max(1, round(H * mpp / target_mpp)), max(1, round(W * mpp / target_mpp))
    out = np.asarray(Image.fromarray(image).resize((w, h), FILTERS[interpolation]))
    return out, W / w, H / h


def to_output(x, y, sx: float, sy: float):
    """Input-pixel coordinates -> resampled-pixel coordinates (pixel centres kept)."""
    return (x + 0.5) / sx - 0.5, (y + 0.5) / sy - 0.5


def to_input(x, y, sx: float, sy: float):
    """Resampled-pixel coordinates -> input-pixel coordinates."""
    return (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5
