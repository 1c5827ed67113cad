"""Reading images as HxWx3 uint8 RGB with their pixel spacing (µm/px).

TIFF goes through tifffile (spacing from the resolution tags, or an Aperio
``MPP =`` description); PNG/JPEG through Pillow, whose spacing must be given.
Pixel formats are converted where the meaning is clear and refused otherwise:

- grayscale -> the gray value repeated in R, G, B;
- alpha channel that is constant (e.g. fully opaque) -> dropped; varying alpha -> refused;
- palette -> looked up to RGB;
- 16-bit: values <= 255 are 8-bit data stored wide -> kept; every value a multiple of
  257 (exact 8->16-bit expansion) -> divided by 257; anything else -> refused (no
  single clear mapping: a scanner's 16-bit range is not known here);
- float, CMYK, more than 4 channels -> refused.

Limits (one-line errors naming the file, never a traceback or a library's warning):

- pixel spacing: :data:`MIN_MPP` .. :data:`MAX_MPP` µm/px (0.05-20: from a 100x oil objective to a
  low-power overview), whether given (``--mpp``) or stored; a stored value outside it is refused
  ("pass --mpp"), except resolution tags above :data:`MAX_PLAUSIBLE_MPP`, which are screen-dpi
  placeholders (72 dpi = 353 µm/px) and count as "no spacing stored";
- size: an image decoded whole holds at most :data:`MAX_IMAGE_PIXELS` (12000 x 12000, 432 MB as
  RGB); larger ones (and decompression bombs: headers claiming billions of pixels) are refused
  before any pixel is decoded. Whole slides and large pyramidal TIFFs are read by regions
  (:mod:`mitodet.io.slide`; ``mitodet detect`` sends TIFFs above the limit there).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from mitodet.errors import MitodetError

# A resolution tag above this (µm/px) is a screen-dpi placeholder (72 dpi = 353 µm/px), not a microscope spacing.
MAX_PLAUSIBLE_MPP = 50.0
# Pixel spacings accepted for an image (µm/px), given or stored: 100x oil immersion is ~0.06,
# a 1.25x overview ~8; outside this range a value is a typo or a wrong unit.
MIN_MPP, MAX_MPP = 0.05, 20.0
# Images decoded whole hold at most this many pixels (432 MB as RGB uint8).
MAX_IMAGE_PIXELS = 12_000 * 12_000

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

# File name endings read by :func:`read_image`.
IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}


def images_in(folder: str | os.PathLike) -> list[Path]:
    """The image files under ``folder`` (recursively), sorted."""
    return sorted(f for f in Path(folder).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given; folders expand to the images inside them (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = images_in(p)
            if not found:
                raise MitodetError(p, "folder holds no images (.tif/.png/.jpg)")
            out += found
        elif not p.exists():
            raise MitodetError(p, "file not found")
        else:
            out.append(p)
    return out


def check_mpp(mpp: float | None, source: str = "--mpp", lo: float = MIN_MPP, hi: float = MAX_MPP) -> float | None:
    """Validate a pixel spacing (µm/px): a finite number in [lo, hi] (default MIN_MPP..MAX_MPP)."""
    if mpp is None:
        return None
    try:
        if isinstance(mpp, bool):
            raise TypeError
        value = float(mpp)
    except (TypeError, ValueError):
        raise MitodetError(source, f"pixel spacing {mpp!r} is not a number") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise MitodetError(
            source, f"pixel spacing {mpp!r} µm/px is not plausible (expected {lo:g} <= mpp <= {hi:g} µm/px)"
        )
    return value


def check_stored_mpp(mpp: float | None, source: str | os.PathLike) -> float | None:
    """A spacing read from a file: None stays None; outside MIN_MPP..MAX_MPP is an error naming the file."""
    if mpp is None:
        return None
    if not (math.isfinite(mpp) and MIN_MPP <= mpp <= MAX_MPP):
        raise MitodetError(
            source,
            f"stored pixel spacing {mpp:.3g} µm/px is not plausible (expected {MIN_MPP:g}-{MAX_MPP:g} µm/px); "
            "pass the real spacing with --mpp",
        )
    return mpp


def check_image_size(width: int, height: int, source: str | os.PathLike) -> None:
    """Refuse an image too large to decode whole (see :data:`MAX_IMAGE_PIXELS`)."""
    if width * height > MAX_IMAGE_PIXELS:
        raise MitodetError(source, _too_large(f"{width}x{height} px ({width * height / 1e6:.6g} Mpx)"))


def _too_large(size: str) -> str:
    return (
        f"image of {size} is too large to read whole (limit {MAX_IMAGE_PIXELS / 1e6:.6g} Mpx = 12000x12000 px); "
        "save it as a tiled pyramidal TIFF or a slide format, which are read region by region"
    )


@contextlib.contextmanager
def _open_pillow(path: Path):
    """``Image.open`` with Pillow's decompression-bomb warning silenced and its error turned into
    one line (our own limit, :data:`MAX_IMAGE_PIXELS`, is stricter and checked by the callers)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as err:
            m = re.search(r"\((\d+) pixels\)", str(err))
            raise MitodetError(path, _too_large(f"{int(m.group(1)) / 1e6:.6g} Mpx" if m else "this size")) from None
        with im:
            yield im


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise MitodetError(path, "file not found")
    if path.is_dir():
        raise MitodetError(path, "is a folder, not an image file")
    return path


def is_tiff(path: str | os.PathLike) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in _TIFF_MAGIC


def _spacing_from_page(page, path=None) -> float | None:
    """µm/px from one tifffile page: Aperio description first, then the resolution tags. Pixels
    whose X and Y spacings differ are refused (one line): every area would be wrong."""
    desc = page.description or ""
    m = re.search(r"\bMPP\s*=\s*([0-9.eE+-]+)", desc)
    if m:
        try:
            value = float(m.group(1))
            if 0 < value <= MAX_PLAUSIBLE_MPP:
                return value
        except ValueError:
            pass
    tags = page.tags
    if "XResolution" not in tags:
        return None
    unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 2  # TIFF default: inch
    num, den = tags["XResolution"].value
    if not num or not den:
        return None
    px_per_unit = num / den
    um_per_unit = {2: 25400.0, 3: 10000.0}.get(int(unit))
    if um_per_unit is None:  # unit "none": the ratio carries no length
        return None
    mpp = um_per_unit / px_per_unit
    if "YResolution" in tags:
        ynum, yden = tags["YResolution"].value
        if ynum and yden:
            ympp = um_per_unit / (ynum / yden)
            if abs(ympp / mpp - 1) > 0.01:
                raise MitodetError(
                    path,
                    f"its X and Y pixel spacings differ ({mpp:.4g} and {ympp:.4g} µm/px): mitodet needs square "
                    "pixels; resample the image to square pixels first",
                )
    return mpp if 0 < mpp <= MAX_PLAUSIBLE_MPP else None


def read_spacing(path: str | os.PathLike) -> float | None:
    """Pixel spacing (µm/px) stored in a TIFF, without reading pixels; None for other formats or no tag."""
    path = _existing(path)
    if not is_tiff(path):
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            spacing = _spacing_from_page(tif.pages[0], path)
    except MitodetError:
        raise
    except Exception as err:  # tifffile raises many types for damaged files
        raise MitodetError(path, f"corrupt TIFF: {err}") from None
    return check_stored_mpp(spacing, path)


def to_rgb8(arr: np.ndarray, source: str | os.PathLike, colormap: np.ndarray | None = None) -> np.ndarray:
    """Convert decoded pixels to HxWx3 uint8 where the meaning is clear (see module doc)."""
    if colormap is not None:  # TIFF palette: indices into a 3xN 16-bit colour map
        cmap = np.asarray(colormap)
        cmap8 = (cmap // 257).astype(np.uint8) if cmap.max() > 255 else cmap.astype(np.uint8)
        arr = cmap8.T[np.asarray(arr)]
    if arr.dtype == bool:
        raise MitodetError(source, "1-bit (binary) image: not an H&E image")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise MitodetError(source, f"unsupported pixel array shape {arr.shape}")
    channels = arr.shape[2]
    if channels in (2, 4):
        alpha = arr[:, :, -1]
        if alpha.size and alpha.min() != alpha.max():
            raise MitodetError(source, "image has a varying alpha channel (transparency); flatten it to RGB first")
        arr = arr[:, :, :-1]
        channels -= 1
    if channels not in (1, 3):
        raise MitodetError(source, f"{channels}-channel image (expected RGB, RGBA or grayscale)")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            raise MitodetError(source, f"floating-point pixels ({arr.dtype}); convert the image to 8-bit RGB first")
        if not np.issubdtype(arr.dtype, np.integer):
            raise MitodetError(source, f"unsupported pixel type {arr.dtype}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            raise MitodetError(source, f"signed pixels with negative values ({arr.dtype}); convert to 8-bit RGB first")
        if hi <= 255:
            arr = arr.astype(np.uint8)
        elif arr.dtype.itemsize == 2 and not np.any(arr % 257):
            arr = (arr // 257).astype(np.uint8)
        else:
            raise MitodetError(
                source,
                f"{arr.dtype.itemsize * 8}-bit image with values {lo}..{hi}: no clear mapping to 8 bits; "
                "convert to 8-bit RGB first",
            )
    if channels == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def _page_sizes(tif) -> list[tuple[int, int]]:
    return [(int(p.imagewidth), int(p.imagelength)) for p in tif.pages]


def _blank(pg) -> bool:
    """A page of one flat colour (read at most 4096 px a side: a decoded page is cheap to test)."""
    if int(pg.imagewidth) * int(pg.imagelength) > 4096 * 4096:
        return False
    arr = pg.asarray()
    return bool(arr.size) and int(arr.max()) - int(arr.min()) <= 2


def _check_page_layout(tif, path: Path) -> None:
    """Page 0 of a multi-page TIFF is its image only where the file is a pyramid (each further page
    smaller) or a stack (pages of one size). A later page larger than page 0, or a blank page 0
    beside pages with content, leaves it unclear which page is the image: refused in one line."""
    sizes = _page_sizes(tif)
    if len(sizes) < 2 or len(set(sizes)) == 1:
        return
    (w0, h0), (i, (w, h)) = sizes[0], max(enumerate(sizes), key=lambda t: t[1][0] * t[1][1])
    if w * h > w0 * h0:
        raise MitodetError(
            path,
            f"page {i} ({w}x{h} px) is larger than page 0 ({w0}x{h0} px): not a pyramid, so which page is "
            "the image is unclear; save the page to analyse as its own file",
        )
    if _blank(tif.pages[0]) and not all(_blank(p) for p in tif.pages[1:8]):
        raise MitodetError(
            path, "page 0 is blank but a later page holds an image; save the page to analyse as its own file"
        )


def check_tiff_pages(path: str | os.PathLike) -> None:
    """:func:`_check_page_layout` for a TIFF file (slides too: their page 0 is the largest)."""
    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            _check_page_layout(tif, path)
    except MitodetError:
        raise
    except Exception:  # unreadable: reported by whichever reader opens it
        return


def _read_tiff(path: Path, page: int) -> tuple[np.ndarray, float | None]:
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.pages) == 0:
                raise MitodetError(path, "corrupt or truncated TIFF: no readable image page")
            if not 0 <= page < len(tif.pages):
                raise MitodetError(path, f"has {len(tif.pages)} page(s); page {page} does not exist")
            if page == 0:
                _check_page_layout(tif, path)
            pg = tif.pages[page]
            photometric = int(pg.photometric)
            if photometric == 5:  # SEPARATED (CMYK)
                raise MitodetError(path, "CMYK TIFF; convert to RGB first")
            check_image_size(int(pg.imagewidth), int(pg.imagelength), path)  # before decoding anything
            arr = pg.asarray()
            if int(pg.planarconfig) == 2 and arr.ndim == 3 and arr.shape[0] <= 4:  # channels first
                arr = np.moveaxis(arr, 0, -1)
            colormap = pg.colormap if photometric == 3 else None
            if photometric == 0 and arr.ndim == 2:  # MINISWHITE: invert
                arr = np.iinfo(arr.dtype).max - arr if np.issubdtype(arr.dtype, np.integer) else arr
            spacing = _spacing_from_page(pg, path)
    except MitodetError:
        raise
    except Exception as err:  # truncated strips, bad tags, unknown compression ...
        raise MitodetError(path, f"corrupt or unreadable TIFF: {err}") from None
    return to_rgb8(arr, path, colormap), spacing


def _read_pillow(path: Path) -> np.ndarray:
    try:
        with _open_pillow(path) as im:
            check_image_size(*im.size, path)  # from the header, before decoding
            im.load()  # decode now: a truncated file fails here, not later
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif im.mode in ("LA", "PA"):
                im = im.convert("LA")
            elif im.mode == "CMYK":
                raise MitodetError(path, "CMYK image; convert to RGB first")
            elif im.mode in ("I;16", "I;16B", "I;16L"):
                arr = np.asarray(im).astype(np.uint16)
                return to_rgb8(arr, path)
            elif im.mode in ("I", "F"):
                return to_rgb8(np.asarray(im), path)
            elif im.mode == "1":
                raise MitodetError(path, "1-bit (binary) image: not an H&E image")
            elif im.mode not in ("RGB", "RGBA", "L"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except MitodetError:
        raise
    except UnidentifiedImageError:
        raise MitodetError(path, "not a readable image (unknown or corrupt format)") from None
    except (OSError, ValueError, SyntaxError) as err:  # PIL's truncated/corrupt errors
        raise MitodetError(path, f"corrupt or truncated image: {err}") from None
    return to_rgb8(arr, path)


def read_image(
    path: str | os.PathLike, mpp: float | None = None, page: int = 0, check_spacing: bool = True
) -> tuple[np.ndarray, float | None]:
    """Read an image as (HxWx3 uint8 RGB, µm/px or None).

    ``mpp`` (when given) overrides the stored spacing; PNG/JPEG carry none of their own.
    ``page`` selects the page of a multi-page TIFF (default the first). An implausible stored
    spacing (outside MIN_MPP..MAX_MPP) is an error unless ``mpp`` overrides it (``check_spacing=False``,
    for uses that ignore the spacing: it reads as None); an image above MAX_IMAGE_PIXELS is refused
    before decoding.
    """
    mpp = check_mpp(mpp)
    path = _existing(path)
    if is_tiff(path):
        pixels, stored = _read_tiff(path, page)
        if mpp is None and check_spacing:
            stored = check_stored_mpp(stored, path)
        elif stored is not None and not (MIN_MPP <= stored <= MAX_MPP):
            stored = None
    else:
        if page != 0:
            raise MitodetError(path, f"page {page} requested but the file is not a multi-page TIFF")
        pixels, stored = _read_pillow(path), None
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise MitodetError(path, "image is empty (0 pixels)")
    return pixels, (mpp if mpp is not None else stored)


def count_tiff_pages(path: str | os.PathLike) -> int:
    """Number of pages of a TIFF (1 for other images)."""
    path = _existing(path)
    if not is_tiff(path):
        return 1
    try:
        with tifffile.TiffFile(path) as tif:
            return len(tif.pages)
    except Exception as err:
        raise MitodetError(path, f"corrupt TIFF: {err}") from None


def tiff_stack_pages(path: str | os.PathLike) -> int:
    """Pages of a multi-page TIFF *stack* (N images of one size, e.g. MIDOG 2025's crop stacks);
    1 for any other file, a pyramid's levels or a slide's label and macro pages included (an
    unreadable file also gives 1: it is reported when read)."""
    try:
        path = Path(path)
        if not is_tiff(path):
            return 1
        with tifffile.TiffFile(path) as tif:
            shape = tif.series[0].shape if tif.series else ()
    except Exception:
        return 1
    return int(shape[0]) if len(shape) == 4 and shape[-1] in (3, 4) and shape[0] > 1 else 1


def read_tiff_pages(path: str | os.PathLike, mpp: float | None = None) -> list[tuple[np.ndarray, float | None]]:
    """Every page of a multi-page TIFF (e.g. a stack of crops) as (pixels, mpp) pairs."""
    return [read_image(path, mpp, page=i) for i in range(count_tiff_pages(path))]


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) without decoding pixels (page 0 for TIFF)."""
    path = _existing(path)
    try:
        if is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                if len(tif.pages) == 0:
                    raise MitodetError(path, "corrupt or truncated TIFF: no readable image page")
                pg = tif.pages[0]
                return int(pg.imagewidth), int(pg.imagelength)
        with _open_pillow(path) as im:
            return im.size
    except MitodetError:
        raise
    except Exception as err:
        raise MitodetError(path, f"not a readable image: {err}") from None


def content_box(pixels: np.ndarray, black: int = 8, fraction: float = 0.95) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of an image without the black padding bands along its edges (crops cut at
    the border of their source region): an edge row/column is padding when at least ``fraction``
    of its pixels are below ``black`` in every channel."""
    dark = pixels.max(axis=2) < black
    rows, cols = dark.mean(axis=1) >= fraction, dark.mean(axis=0) >= fraction
    y0, y1, x0, x1 = 0, len(rows), 0, len(cols)
    while y0 < y1 and rows[y0]:
        y0 += 1
    while y1 > y0 and rows[y1 - 1]:
        y1 -= 1
    while x0 < x1 and cols[x0]:
        x0 += 1
    while x1 > x0 and cols[x1 - 1]:
        x1 -= 1
    return y0, y1, x0, x1
