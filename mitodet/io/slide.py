"""Whole-slide (and any large image) reading at a target pixel spacing.

Back ends, tried in order: openslide (the ``openslide-bin`` wheel: SVS, NDPI, MRXS,
pyramidal TIFF ...), tiffslide (any TIFF openslide does not take, e.g. plain strip
TIFFs like MIDOG's ROIs), and an in-memory image via :func:`mitodet.io.image.read_image`
(PNG/JPEG). Both slide libraries are imported lazily so that the data layer
imports on machines that lack them.

Regions are addressed in pixels of the TARGET spacing; the reader picks the
coarsest pyramid level that is still at least as fine as the target, reads that
level and resamples with Pillow (antialiased when shrinking). Reading finer
than the stored spacing upsamples and warns once.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from mitodet.errors import MitodetError
from mitodet.io.image import check_mpp, check_stored_mpp, check_tiff_pages, is_tiff, read_image, read_spacing
from mitodet.resample import DEFAULT_INTERPOLATION, FILTERS
from mitodet.schema import DEFAULT_MPP

MAX_READ_PIXELS = 400_000_000  # Slide.read refuses more than this (about 1.2 GB of RGB)
THUMBNAIL_MAX_MPP = 1000.0  # coarsest spacing a region may be read at (overviews of very large slides)


class UpsamplingWarning(UserWarning):
    """Reading at a finer spacing than the slide stores."""


class _ArrayBackend:
    """A decoded image in memory, with the openslide-like surface the Slide needs."""

    def __init__(self, pixels: np.ndarray):
        self.pixels = pixels
        self.level_dimensions = ((pixels.shape[1], pixels.shape[0]),)

    def read(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        return self.pixels[y : y + h, x : x + w]

    def close(self) -> None:
        pass


class _LibBackend:
    """openslide.OpenSlide or tiffslide.TiffSlide (same API)."""

    def __init__(self, handle, name: str):
        self.handle = handle
        self.name = name
        self.level_dimensions = tuple(tuple(d) for d in handle.level_dimensions)

    def read(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        ds = (
            self.level_dimensions[0][0] / self.level_dimensions[level][0],
            self.level_dimensions[0][1] / self.level_dimensions[level][1],
        )
        img = self.handle.read_region((int(round(x * ds[0])), int(round(y * ds[1]))), level, (int(w), int(h)))
        arr = np.asarray(img)
        if arr.ndim == 3 and arr.shape[2] == 4:  # openslide: RGBA, transparent where nothing was scanned -> white
            rows = np.flatnonzero((arr[:, :, 3] < 255).any(axis=1))
            if len(rows) == 0:  # all opaque (the usual case): no float copy of the whole region
                return arr[:, :, :3]
            out = arr[:, :, :3].copy()
            for r0 in range(int(rows[0]), int(rows[-1]) + 1, 256):  # blend by bands: memory stays small
                band = arr[r0 : r0 + 256]
                alpha = band[:, :, 3:4].astype(np.float32) / 255.0
                out[r0 : r0 + 256] = (band[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).round()
            return out
        return arr[:, :, :3]

    def close(self) -> None:
        self.handle.close()


def _stored_mpp(handle, prefix: str, path: Path) -> float | None:
    """The library's level-0 spacing (µm/px); a slide whose X and Y spacings differ by more than
    1 % is refused in one line (every area and distance would be wrong)."""
    props = handle.properties
    vals = []
    for key in (f"{prefix}.mpp-x", f"{prefix}.mpp-y"):
        try:
            v = float(props.get(key))
        except (TypeError, ValueError):
            continue
        if 0 < v < 50:
            vals.append(v)
    if len(vals) == 2 and abs(vals[1] / vals[0] - 1) > 0.01:
        handle.close()
        raise MitodetError(
            path,
            f"its X and Y pixel spacings differ ({vals[0]:.4g} and {vals[1]:.4g} µm/px): mitodet needs "
            "square pixels; resample the slide to square pixels first",
        )
    return sum(vals) / len(vals) if vals else None


class Slide:
    """An opened slide/image; see :func:`open_slide`."""

    def __init__(self, path: Path, backend, mpp: float, backend_name: str):
        self.path = path
        self._backend = backend
        self.mpp = mpp
        self.backend = backend_name
        self.level_dimensions = backend.level_dimensions
        self.dimensions = self.level_dimensions[0]
        w0, h0 = self.dimensions
        self.level_downsamples = tuple(w0 / w for w, _ in self.level_dimensions)
        self._warned: set[float] = set()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._backend.close()

    def __repr__(self) -> str:
        w, h = self.dimensions
        levels = len(self.level_dimensions)
        return f"Slide({self.path.name!r}, {w}x{h} px, {self.mpp:.4g} µm/px, {levels} level(s), {self.backend})"

    def size_at(self, target_mpp: float = DEFAULT_MPP) -> tuple[int, int]:
        """(width, height) of the whole slide in pixels of ``target_mpp``."""
        f = self.mpp / target_mpp
        return int(round(self.dimensions[0] * f)), int(round(self.dimensions[1] * f))

    def best_level(self, target_mpp: float = DEFAULT_MPP) -> int:
        """The coarsest level whose spacing is at most ``target_mpp`` (level 0 if none is)."""
        scale = target_mpp / self.mpp
        best = 0
        for level, ds in enumerate(self.level_downsamples):
            if ds <= scale * (1 + 1e-3) and ds >= self.level_downsamples[best]:
                best = level
        return best

    def _warn_upsampling(self, target_mpp: float) -> None:
        factor = self.mpp / target_mpp
        if factor > 1.02 and target_mpp not in self._warned:
            self._warned.add(target_mpp)
            warnings.warn(
                f"{self.path.name}: stored at {self.mpp:.4g} µm/px; "
                f"reading at {target_mpp:.4g} µm/px upsamples x{factor:.2f}",
                UpsamplingWarning,
                stacklevel=3,
            )

    def read_region(
        self,
        x: int,
        y: int,
        w: int,
        h: int,
        target_mpp: float = DEFAULT_MPP,
        interpolation: str = DEFAULT_INTERPOLATION,
    ) -> np.ndarray:
        """HxWx3 uint8 of the box (x, y, w, h) given in pixels of ``target_mpp``; white outside the slide."""
        target_mpp = check_mpp(target_mpp, "target spacing", hi=THUMBNAIL_MAX_MPP)
        w, h = int(w), int(h)
        if w <= 0 or h <= 0:
            raise ValueError(f"region size must be positive, got {w}x{h}")
        self._warn_upsampling(target_mpp)
        scale = target_mpp / self.mpp  # level-0 pixels per output pixel
        level = self.best_level(target_mpp)
        lw, lh = self.level_dimensions[level]
        sx, sy = self.dimensions[0] / lw, self.dimensions[1] / lh
        fx0, fy0 = x * scale / sx, y * scale / sy  # box in level pixels (float)
        fx1, fy1 = (x + w) * scale / sx, (y + h) * scale / sy
        exact = abs(scale / sx - 1) < 1e-6 and abs(scale / sy - 1) < 1e-6 and fx0 == round(fx0) and fy0 == round(fy0)
        if exact:
            ix0, iy0, ix1, iy1 = int(round(fx0)), int(round(fy0)), int(round(fx0)) + w, int(round(fy0)) + h
        else:  # one pixel of margin for the interpolation kernel
            ix0, iy0 = math.floor(fx0) - 1, math.floor(fy0) - 1
            ix1, iy1 = math.ceil(fx1) + 1, math.ceil(fy1) + 1
        canvas = np.full((iy1 - iy0, ix1 - ix0, 3), 255, np.uint8)
        cx0, cy0, cx1, cy1 = max(ix0, 0), max(iy0, 0), min(ix1, lw), min(iy1, lh)
        if cx1 > cx0 and cy1 > cy0:
            try:
                part = self._backend.read(level, cx0, cy0, cx1 - cx0, cy1 - cy0)
            except Exception as err:  # damaged tile, unsupported codec ...
                raise MitodetError(self.path, f"cannot read region at level {level}: {err}") from None
            canvas[cy0 - iy0 : cy1 - iy0, cx0 - ix0 : cx1 - ix0] = part
        if exact:
            return canvas
        box = (fx0 - ix0, fy0 - iy0, fx1 - ix0, fy1 - iy0)
        out = Image.fromarray(canvas).resize((w, h), FILTERS[interpolation], box=box)
        return np.asarray(out)

    def read(self, target_mpp: float = DEFAULT_MPP) -> np.ndarray:
        """The whole slide resampled to ``target_mpp`` (for small slides and ROIs)."""
        w, h = self.size_at(check_mpp(target_mpp, "target spacing", hi=THUMBNAIL_MAX_MPP))
        if w * h > MAX_READ_PIXELS:
            raise MitodetError(
                self.path, f"too large to read whole at {target_mpp} µm/px ({w}x{h} px); read it by regions"
            )
        return self.read_region(0, 0, w, h, target_mpp)


def open_slide(path: str | os.PathLike, mpp: float | None = None) -> Slide:
    """Open a whole-slide file or image; ``mpp`` (µm/px) overrides or supplies the level-0 spacing.

    Raises MitodetError when the file is missing/unreadable or no spacing is known.
    """
    mpp = check_mpp(mpp)
    path = Path(path)
    if not path.exists():
        raise MitodetError(path, "file not found")
    if path.is_dir():
        raise MitodetError(path, "is a folder, not a slide file")
    if is_tiff(path):
        check_tiff_pages(path)
    backend, stored, name, errors = None, None, "", []
    try:
        import openslide

        if openslide.OpenSlide.detect_format(str(path)) is not None:
            handle = openslide.OpenSlide(str(path))
            stored = _stored_mpp(handle, "openslide", path)
            backend, name = _LibBackend(handle, "openslide"), "openslide"
    except ImportError:
        pass
    except MitodetError:
        raise
    except Exception as err:  # openslide.OpenSlideError and friends
        errors.append(f"openslide: {err}")
    if backend is None and is_tiff(path):
        try:
            import tiffslide

            handle = tiffslide.TiffSlide(str(path))
            stored = _stored_mpp(handle, "tiffslide", path)
            backend, name = _LibBackend(handle, "tiffslide"), "tiffslide"
        except ImportError:
            pass
        except MitodetError:
            raise
        except Exception as err:
            errors.append(f"tiffslide: {err}")
        if stored is None and backend is not None and mpp is None:
            try:
                stored = read_spacing(path)
            except MitodetError:
                backend.close()
                raise
    if backend is None:
        # PNG/JPEG, a TIFF neither library takes (multi-page stack: page 0), or no slide library installed
        try:
            pixels, stored = read_image(path, mpp)
        except MitodetError as err:
            if errors:
                raise MitodetError(
                    path, "corrupt or unsupported slide (" + "; ".join(errors + [err.problem]) + ")"
                ) from None
            raise
        backend, name = _ArrayBackend(pixels), "memory"
    try:
        spacing = mpp if mpp is not None else check_stored_mpp(stored, path)
    except MitodetError:
        backend.close()
        raise
    if spacing is None:
        backend.close()
        raise MitodetError(path, "no pixel spacing stored; pass --mpp")
    return Slide(path, backend, spacing, name)
