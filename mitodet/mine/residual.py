"""Residual mining: extra negatives where the OD signal leaves the H-E plane.

Lafarge & Koelzer (MIDOG 2022): after Macenko unmixing of UNLABELLED images,
patches with high residual intensity (pigment, ink, other non-H&E absorbers;
true mitoses lie in the H-E plane) become extra negative training examples.

Residual intensity = |Gaussian(residual concentration)| at nucleus scale: smoothing
the *signed* residual first cancels pixel noise (which |r| would accumulate), and the
absolute value keeps absorbers on either side of the plane (brown/black, blue/green).

Negative table (CSV, read by training): ``image,x,y,label,score``; ``image`` is an
absolute path (resolved from the command line), a relative one is read relative to
the table's folder; x/y are pixels of that image; ``label`` is ``negative``; ``score``
the residual intensity (OD units).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max

from mitodet.data.schema import DEFAULT_MPP, NEGATIVE, Point
from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_open, atomic_path
from mitodet.stain import StainVectors, macenko_vectors, unmix

TABLE_COLUMNS = ["image", "x", "y", "label", "score"]
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


def residual_intensity(rgb: np.ndarray, mpp: float = DEFAULT_MPP, sigma_um: float = 2.0,
                       sv: StainVectors | None = None, beta: float = 0.15, alpha: float = 1.0):
    """Smoothed residual intensity map (HxW float32) and the stain vectors used."""
    sv = sv if sv is not None else macenko_vectors(rgb, beta=beta, alpha=alpha)
    residual = unmix(rgb, sv)[..., 2]
    smooth = ndi.gaussian_filter(residual, sigma=sigma_um / mpp, mode="reflect")
    return np.abs(smooth), sv


def mine_residual(rgb: np.ndarray, mpp: float = DEFAULT_MPP, params: ResidualParams = ResidualParams(),
                  exclude: Sequence[Point] = (), sv: StainVectors | None = None) -> list[Mined]:
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
        min_distance=max(1, int(round(params.spacing_um / mpp))),
        threshold_abs=params.threshold,
        exclude_border=margin,
    )
    scores = intensity[peaks[:, 0], peaks[:, 1]] if len(peaks) else np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    keep_out = np.array([[p.x, p.y] for p in exclude], dtype=np.float64).reshape(-1, 2)
    radius = params.min_distance_um / mpp
    mined: list[Mined] = []
    for i in order:
        y, x = (float(v) for v in peaks[i])
        if len(keep_out) and np.min(np.hypot(keep_out[:, 0] - x, keep_out[:, 1] - y)) <= radius:
            continue
        mined.append(Mined(x, y, float(scores[i])))
        if len(mined) >= params.per_image:
            break
    return mined


def write_negative_table(path: str | os.PathLike, rows: Iterable[tuple[str | os.PathLike, Mined]]) -> int:
    """Write ``(image path, Mined)`` rows as the negative-point table (atomically); returns the row count."""
    n = 0
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(TABLE_COLUMNS)
        for image, m in rows:
            writer.writerow([str(Path(image).resolve()), f"{m.x:.1f}", f"{m.y:.1f}", NEGATIVE, f"{m.score:.5f}"])
            n += 1
    return n


def read_negative_table(path: str | os.PathLike) -> dict[str, list[Point]]:
    """Read a negative-point table: {absolute image path: [Point(label=negative)]}, in file order."""
    path = Path(path)
    out: dict[str, list[Point]] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("image", "x", "y") if c not in (reader.fieldnames or [])]
            if missing:
                raise MitodetError(path, f"not a negative table: missing column(s) {', '.join(missing)}")
            for n, row in enumerate(reader, start=2):
                try:
                    x, y = float(row["x"]), float(row["y"])
                except (TypeError, ValueError):
                    raise MitodetError(path, f"line {n}: x/y not numbers: {row['x']!r}, {row['y']!r}") from None
                if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
                    raise MitodetError(path, f"line {n}: bad point ({x}, {y})")
                label = (row.get("label") or NEGATIVE).strip().lower()
                if label != NEGATIVE:
                    raise MitodetError(path, f"line {n}: label {label!r} is not 'negative'")
                if not row["image"]:
                    raise MitodetError(path, f"line {n}: empty image path")
                image = Path(row["image"])
                image = image if image.is_absolute() else (path.parent / image)
                out.setdefault(str(image.resolve()), []).append(Point(x, y, NEGATIVE))
    except FileNotFoundError:
        raise MitodetError(path, "file not found") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise MitodetError(path, f"not a CSV table ({err})") from None
    return out


def crop_patch(rgb: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    """size x size crop centred on (x, y), mirror-padded at the border."""
    half = size // 2
    cx, cy = int(round(x)), int(round(y))
    pad = np.pad(rgb, ((half, size), (half, size), (0, 0)), mode="reflect")
    return pad[cy: cy + size, cx: cx + size]


def contact_sheet(path: str | os.PathLike, items: Sequence[tuple[np.ndarray, str]], cols: int = 8,
                  zoom: int = 2) -> None:
    """Write a PNG grid of patches, each captioned (e.g. image name and score), atomically."""
    from PIL import Image, ImageDraw

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
