"""Readers for the crop/patch/tile sets in ../shared/data: ``midog21_crops``, ``icpr2012_patches``, ``tissue``."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.measure import label, regionprops

from mitodet.data.midog import CATEGORY_LABEL, SCANNER_MPP, SCANNER_SPELLING, clamp_inside
from mitodet.errors import MitodetError
from mitodet.io.files import csv_errors
from mitodet.schema import DEFAULT_MPP, Dataset, ImageRecord, Point

ICPR2012_MPP = 0.2456  # ICPR 2012 MITOS scanner A (Aperio ScanScope XT), per the contest description
ICPR2012_MIN_AREA = 30  # mask components smaller than this (px) are JPEG speckle, not mitoses
CROP_SIZE = 128


def _rows(path: Path, need: set[str]) -> list[dict[str, str]]:
    with csv_errors(path), open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not need <= set(rows[0]):
        raise MitodetError(path, f"missing columns {sorted(need - set(rows[0]))}")
    return rows


def _folder(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise MitodetError(root, "folder not found")
    return root


def load_midog21_crops(root: str | os.PathLike) -> Dataset:
    """The 1721 MIDOG 2021 crops: one record per 128x128 PNG, with every labelled cell inside it.

    Domain: ``scanner``, ``source_image`` (the MIDOG 2021 file name, e.g. ``002.tiff``: crops of one
    source image must stay on one side of a split) and ``atypical`` (``"True"``/``"False"``).
    """
    root = _folder(root)
    crops = _rows(root / "crops.csv", {"file", "source_image", "scanner", "atypical"})
    labels = _rows(root / "labels_in_crops.csv", {"file", "annotation_id", "category", "x", "y"})
    records: dict[str, ImageRecord] = {}
    for r in crops:
        f = r["file"]
        if f in records:
            raise MitodetError(root / "crops.csv", f"crop {f} listed twice")
        records[f] = ImageRecord(
            id=Path(f).stem,
            path=root / f,
            width=CROP_SIZE,
            height=CROP_SIZE,
            mpp=SCANNER_MPP.get(SCANNER_SPELLING.get(r["scanner"], r["scanner"]), DEFAULT_MPP),
            domain={
                "source": "midog21_crops",
                "scanner": SCANNER_SPELLING.get(r["scanner"], r["scanner"]),
                "source_image": r["source_image"],
                "atypical": r["atypical"],
                "tumor_type": "human breast cancer",
                "species": "human",
            },
        )
    src = root / "labels_in_crops.csv"
    for n, r in enumerate(labels, start=2):
        rec = records.get(r["file"])
        if rec is None:
            raise MitodetError(src, f"line {n}: crop {r['file']} is not in crops.csv")
        label = CATEGORY_LABEL.get(r["category"].strip().lower())
        if label is None:
            raise MitodetError(src, f"line {n}: unknown category {r['category']!r}")
        try:
            x, y, aid = float(r["x"]), float(r["y"]), int(r["annotation_id"])
        except ValueError:
            raise MitodetError(src, f"line {n}: x/y/annotation_id are not numbers") from None
        x, y = clamp_inside(x, y, rec.width, rec.height, 0, src, f"line {n} ({r['file']})")
        rec.points.append(Point(x, y, label, aid))
    return Dataset("MIDOG 2021 crops", list(records.values()))


# AtNorM-MD crops come from several MIDOG++ scanners (0.23-0.26 µm/px, not stored per crop):
# read at the middle of that range, so the scale error is at most about 5 %.
ATNORM_MPP = 0.24


def load_atnorm_crops(root: str | os.PathLike) -> Dataset:
    """The AtNorM-MD crops (MIDOG++, seven tumour types): one record per 128x128 PNG whose centre
    is a mitotic figure. Other cells are unlabelled (``domain["labels"] = "centre only"``); no
    scanner or tumour type is known per crop. Ids are ``atnorm_<file stem>``."""
    root = _folder(root)
    rows = _rows(root / "crops.csv", {"file", "atypical"})
    records, seen = [], set()
    for n, r in enumerate(rows, start=2):
        f = r["file"]
        if f in seen:
            raise MitodetError(root / "crops.csv", f"line {n}: crop {f} listed twice")
        seen.add(f)
        records.append(
            ImageRecord(
                id=f"atnorm_{Path(f).stem}",
                path=root / f,
                width=CROP_SIZE,
                height=CROP_SIZE,
                mpp=ATNORM_MPP,
                domain={
                    "source": "atnorm_md",
                    "scanner": "MIDOG++ (unknown)",
                    "tumor_type": "MIDOG++ (unknown)",
                    "atypical": "True" if r["atypical"].strip() == "1" else "False",
                    "labels": "centre only",
                },
                points=[Point(CROP_SIZE / 2, CROP_SIZE / 2)],
            )
        )
    return Dataset("AtNorM-MD crops", records)


def mask_points(mask: np.ndarray, min_area: int = ICPR2012_MIN_AREA) -> list[tuple[float, float, int]]:
    """Centroids (x, y) and areas of the connected components of a binary mask (> 127 is foreground)."""
    fg = mask > 127
    if fg.ndim == 3:
        fg = fg.any(axis=2)
    out = []
    for region in regionprops(label(fg, connectivity=2)):
        if region.area >= min_area:
            cy, cx = region.centroid
            out.append((float(cx), float(cy), int(region.area)))
    return out


def load_icpr2012(root: str | os.PathLike) -> Dataset:
    """ICPR 2012 MITOS patches: points = centroids of the mitosis masks (``masks/<same name>``)."""
    root = _folder(root)
    images = sorted((root / "images").glob("*.jpg")) if (root / "images").is_dir() else []
    if not images:
        raise MitodetError(root, "no images/*.jpg: not an ICPR 2012 patch folder")
    records = []
    for img in images:
        mask_path = root / "masks" / img.name
        if not mask_path.exists():
            raise MitodetError(mask_path, "mask file not found")
        try:
            with Image.open(img) as im:
                w, h = im.size
            with Image.open(mask_path) as m:
                mask = np.asarray(m.convert("L"))
        except OSError as err:
            raise MitodetError(mask_path, f"unreadable image: {err}") from None
        if mask.shape != (h, w):
            raise MitodetError(mask_path, f"mask size {mask.shape[1]}x{mask.shape[0]} differs from image {w}x{h}")
        points = [Point(x, y) for x, y, _ in mask_points(mask)]
        parts = img.stem.split("_")  # A00_<img>_<k> (positive) or A00_<img>_<r>_<c> (negative)
        records.append(
            ImageRecord(
                id=img.stem,
                path=img,
                width=w,
                height=h,
                mpp=ICPR2012_MPP,
                domain={
                    "scanner": "Aperio (ICPR 2012 A)",
                    "source_image": "_".join(parts[:2]),
                    "tumor_type": "human breast cancer",
                    "species": "human",
                },
                points=points,
            )
        )
    return Dataset("ICPR 2012", records)


def _monuseg(root: Path) -> list[ImageRecord]:
    rows = _rows(root / "monuseg_index.csv", {"path", "split", "tcga_id", "organ", "slide_type"})
    out = []
    for r in rows:
        p = root / r["path"]
        out.append(
            ImageRecord(
                id=Path(r["path"]).stem,
                path=p,
                width=int(r["width"]) if r.get("width") else None,
                height=int(r["height"]) if r.get("height") else None,
                mpp=DEFAULT_MPP,  # 40x per MoNuSeg; the files carry only a 72-dpi placeholder
                labelled=False,
                domain={
                    "source": "monuseg",
                    "organ": r["organ"].split(" (")[0],
                    "slide_type": r["slide_type"],
                    "species": "human",
                    "source_image": r["tcga_id"],
                    "split": r["split"],
                },
            )
        )
    return out


def _ccmct(root: Path) -> list[ImageRecord]:
    rows = _rows(root / "ccmct_index.csv", {"path", "slide", "tile_size"})
    out = []
    for r in rows:
        p = root / "ccmct" / r["path"]
        size = int(r["tile_size"])
        out.append(
            ImageRecord(
                id=Path(r["path"]).stem,
                path=p,
                width=size,
                height=size,
                mpp=DEFAULT_MPP,  # Aperio CS2 at 40x per the source; not stored in the PNGs
                labelled=False,
                domain={
                    "source": "ccmct",
                    "tumor_type": "canine cutaneous mast cell tumor",
                    "scanner": "Aperio CS2",
                    "species": "canine",
                    "source_image": r["slide"],
                },
            )
        )
    return out


def load_tissue(root: str | os.PathLike, which: str = "all") -> Dataset:
    """Unlabelled tissue tiles (``labelled=False``): MoNuSeg (TCGA, several organs) and/or CCMCT (canine)."""
    root = _folder(root)
    if which not in ("monuseg", "ccmct", "all"):
        raise MitodetError("--which", f"unknown tissue set {which!r} (expected monuseg, ccmct or all)")
    records = []
    if which in ("monuseg", "all"):
        records += _monuseg(root)
    if which in ("ccmct", "all"):
        records += _ccmct(root)
    for rec in records:
        if not rec.path.exists():
            raise MitodetError(rec.path, "tile listed in the index but the file is missing")
    return Dataset(f"tissue ({which})", records)
