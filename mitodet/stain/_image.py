"""Private image reader used until/unless ``mitodet.io.image.read_image`` exists.

Delegates to the project reader when it is there; otherwise reads TIFF with
tifffile and PNG/JPEG with Pillow, raising MitodetError on bad input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mitodet.errors import MitodetError


def read_rgb(path, mpp: float | None = None) -> tuple[np.ndarray, float | None]:
    """Read an image as HxWx3 uint8 RGB and its µm/px (``mpp`` if given, else stored, else None)."""
    try:
        from mitodet.io.image import read_image
    except ImportError:
        read_image = None
    if read_image is not None:
        return read_image(path, mpp=mpp)
    path = Path(path)
    if not path.is_file():
        raise MitodetError(path, "file not found")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
    except Exception as err:  # any decoder failure is bad input, not a crash
        raise MitodetError(path, f"cannot read image ({type(err).__name__}: {err})") from None
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise MitodetError(path, f"not an RGB image (shape {arr.shape})")
    if arr.dtype != np.uint8:
        raise MitodetError(path, f"expected 8-bit RGB, got {arr.dtype}")
    return np.ascontiguousarray(arr[..., :3]), mpp
