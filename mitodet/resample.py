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

from mitodet.errors import MitodetError

RESAMPLE_TOLERANCE = 0.02  # spacings within 2 % of the target are used as they are
FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
DEFAULT_INTERPOLATION = "bilinear"
# An image resampled in memory may hold at most this many pixels (432 MB as RGB): a wrong spacing
# (e.g. 20 µm/px given for a 0.25 µm/px image) must end in one line, not in a MemoryError.
MAX_RESAMPLED_PIXELS = 12_000 * 12_000


def resampled_size(height: int, width: int, mpp: float, target_mpp: float) -> tuple[int, int]:
    """(height, width) of an image of ``height x width`` px at ``mpp`` once resampled to ``target_mpp``."""
    if not needs_resampling(mpp, target_mpp):
        return height, width
    f = mpp / target_mpp
    return max(1, round(height * f)), max(1, round(width * f))


def check_resampled_size(shape, mpp: float, target_mpp: float, source=None) -> None:
    """Refuse a resampling whose result would exceed :data:`MAX_RESAMPLED_PIXELS` (one line)."""
    H, W = int(shape[0]), int(shape[1])
    h, w = resampled_size(H, W, mpp, target_mpp)
    if h * w > MAX_RESAMPLED_PIXELS:
        raise MitodetError(
            source,
            f"a {W}x{H} px image at {mpp:g} µm/px becomes {w}x{h} px at the model's {target_mpp:g} µm/px "
            f"(x{mpp / target_mpp:.3g}; limit {MAX_RESAMPLED_PIXELS / 1e6:.0f} Mpx): check the pixel spacing (--mpp)",
        )


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
    h, w = resampled_size(H, W, mpp, target_mpp)
    out = np.asarray(Image.fromarray(image).resize((w, h), FILTERS[interpolation]))
    return out, W / w, H / h


def to_output(x, y, sx: float, sy: float):
    """Input-pixel coordinates -> resampled-pixel coordinates (pixel centres kept)."""
    return (x + 0.5) / sx - 0.5, (y + 0.5) / sy - 0.5


def to_input(x, y, sx: float, sy: float):
    """Resampled-pixel coordinates -> input-pixel coordinates."""
    return (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5
