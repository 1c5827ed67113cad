"""Residual mining: extra negatives where the OD signal leaves the H-E plane.

Lafarge & Koelzer (MIDOG 2022): after Macenko unmixing of UNLABELLED images,
patches with high residual intensity (pigment, ink, other non-H&E absorbers;
true mitoses lie in the H-E plane) become extra negative training examples.

Residual intensity = |Gaussian(residual concentration)| at nucleus scale: smoothing
the *signed* residual first cancels pixel noise (which |r| would accumulate), and the
absolute value keeps absorbers on either side of the plane (brown/black, blue/green).

The mined points go to a negative table (:mod:`mitodet.io.negatives`), scored by their
residual intensity (OD units).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi
from skimage.feature import peak_local_max

from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_path
from mitodet.io.image import read_image
from mitodet.io.negatives import write_negative_table
from mitodet.reflect import centred_window
from mitodet.schema import DEFAULT_MPP, NEGATIVE, Point, um_to_px
from mitodet.stain import StainError, StainVectors, macenko_vectors, unmix

PATCH = 78  # the model's receptive field: a mined point keeps a whole patch inside the image


@dataclass(frozen=True)
class ResidualParams:
    """Residual-mining settings (lengths in µm so they follow the pixel spacing)."""

    per_image: int = 5  # keep at most this many per image (top scores)
    threshold: float = 0.06  # min residual intensity (smoothed |OD|); ~p90 of top peaks on the real tiles
    sigma_um: float = 2.0  # smoothing at nucleus scale (8 px at 0.25 µm/px)
    spacing_um: float = PATCH * DEFAULT_MPP  # min distance between mined points (~ a patch)
    min_distance_um: float = 15.0  # min distance to a labelled mitosis (2x the MIDOG radius)
    patch: int = PATCH  # border margin: patch // 2 px
    beta: float = 0.15
    alpha: float = 1.0


@dataclass(frozen=True)
class Mined:
    x: float
    y: float
    score: float

    def point(self) -> Point:
        return Point(self.x, self.y, NEGATIVE)


def residual_intensity(
    rgb: np.ndarray,
    mpp: float = DEFAULT_MPP,
    sigma_um: float = 2.0,
    sv: StainVectors | None = None,
    beta: float = 0.15,
    alpha: float = 1.0,
):
    """Smoothed residual intensity map (HxW float32) and the stain vectors used."""
    sv = sv if sv is not None else macenko_vectors(rgb, beta=beta, alpha=alpha)
    residual = unmix(rgb, sv)[..., 2]
    smooth = ndi.gaussian_filter(residual, sigma=um_to_px(sigma_um, mpp), mode="reflect")
    return np.abs(smooth), sv


def mine_residual(
    rgb: np.ndarray,
    mpp: float = DEFAULT_MPP,
    params: ResidualParams = ResidualParams(),
    exclude: Sequence[Point] = (),
    sv: StainVectors | None = None,
) -> list[Mined]:
    """Top residual-intensity local maxima of one image, best first.

    Keeps maxima above ``params.threshold``, at least ``spacing_um`` apart, ``patch // 2``
    px from the border, and more than ``min_distance_um`` from every point in ``exclude``
    (the image's labelled mitoses). Raises NoTissueError / SingleStainError from unmixing.
    """
    intensity, _ = residual_intensity(rgb, mpp, params.sigma_um, sv, params.beta, params.alpha)
    margin = params.patch // 2
    if min(intensity.shape) <= 2 * margin:
        return []
    peaks = peak_local_max(
        intensity,
        min_distance=max(1, int(round(um_to_px(params.spacing_um, mpp)))),
        threshold_abs=params.threshold,
        exclude_border=margin,
    )
    scores = intensity[peaks[:, 0], peaks[:, 1]] if len(peaks) else np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    keep_out = np.array([[p.x, p.y] for p in exclude], dtype=np.float64).reshape(-1, 2)
    radius = um_to_px(params.min_distance_um, mpp)
    mined: list[Mined] = []
    for i in order:
        y, x = (float(v) for v in peaks[i])
        if len(keep_out) and np.min(np.hypot(keep_out[:, 0] - x, keep_out[:, 1] - y)) <= radius:
            continue
        mined.append(Mined(x, y, float(scores[i])))
        if len(mined) >= params.per_image:
            break
    return mined


def contact_sheet(
    path: str | os.PathLike, items: Sequence[tuple[np.ndarray, str]], cols: int = 8, zoom: int = 2
) -> None:
    """Write a PNG grid of patches, each captioned (e.g. image name and score), atomically."""
    if not items:
        raise ValueError("no patches for a contact sheet")
    size = items[0][0].shape[0] * zoom
    caption = 24
    cols = max(1, min(cols, len(items)))
    rows = -(-len(items) // cols)
    sheet = Image.new("RGB", (cols * (size + 4) + 4, rows * (size + caption + 4) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (patch, text) in enumerate(items):
        r, c = divmod(i, cols)
        x0, y0 = 4 + c * (size + 4), 4 + r * (size + caption + 4)
        tile = Image.fromarray(patch).resize((size, size), Image.NEAREST)
        sheet.paste(tile, (x0, y0))
        m = size // 2
        draw.line([(x0 + m - 6, y0 + m), (x0 + m + 6, y0 + m)], fill=(0, 255, 0))
        draw.line([(x0 + m, y0 + m - 6), (x0 + m, y0 + m + 6)], fill=(0, 255, 0))
        for k, line in enumerate(text.split("\n")[:2]):
            draw.text((x0, y0 + size + 1 + 11 * k), line[: size // 6], fill=(0, 0, 0))
    with atomic_path(path) as tmp:
        sheet.save(tmp)


@dataclass
class ResidualRun:
    """What :func:`mine_files` did: rows written, per-image counts, images skipped and why."""

    table: Path
    rows: int
    images: int
    per_image: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    sheet: Path | None = None


def mine_files(
    files: Sequence[Path],
    out: str | os.PathLike,
    params: ResidualParams = ResidualParams(),
    mpp: float | None = None,
    exclude: dict[Path, list[Point]] | None = None,
    sheet: str | os.PathLike | None = None,
    sheet_crop: int = 96,
    on_image: Callable[[Path], None] | None = None,
) -> ResidualRun:
    """Residual-mine every image and write the negative table ``out`` (and a contact sheet).

    ``mpp`` overrides the stored spacing; an image with none (PNG/JPEG, TIFF without resolution
    tags) needs it, as in ``mitodet detect`` (one-line error otherwise: no spacing is assumed).
    ``exclude`` maps an image to its labelled mitoses. An image the unmixing cannot handle
    (no tissue, one stain only) is skipped and listed in ``skipped``.
    """
    rows: list[tuple[Path, float, float, float]] = []
    patches: list[tuple[np.ndarray, str]] = []
    run = ResidualRun(Path(out), 0, len(files))
    for f in files:
        rgb, spacing = read_image(f, mpp=mpp)
        if spacing is None:
            raise MitodetError(f, "no pixel spacing stored in the file; pass --mpp (µm/px)")
        try:
            mined = mine_residual(rgb, spacing, params, (exclude or {}).get(f, ()))
        except StainError as err:
            run.skipped.append(f"{f}: {err.problem}")
            mined = []
        rows += [(f, m.x, m.y, m.score) for m in mined]
        if mined:
            run.per_image[str(f)] = len(mined)
        if sheet is not None:
            patches += [
                (centred_window(rgb, m.x, m.y, sheet_crop), f"{f.stem[:14]}\n{m.score:.3f} ({m.x:.0f},{m.y:.0f})")
                for m in mined
            ]
        if on_image is not None:
            on_image(f)
    run.rows = write_negative_table(out, rows)
    if sheet is not None and patches:
        contact_sheet(sheet, patches)
        run.sheet = Path(sheet)
    return run
