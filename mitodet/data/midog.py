"""Readers for the MIDOG annotation files: MIDOG 2021 ``MIDOG.json``, MIDOG++ ``MIDOG++.json``
(+ ``datasets_xvalidation.csv``) and the MIDOG 2022 point table CSV.

All give a :class:`Dataset` with one :class:`ImageRecord` per image (id = file name,
e.g. ``"001.tiff"``), domain attributes and points at the bbox centres.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from mitodet.errors import MitodetError
from mitodet.io.files import csv_errors, read_json
from mitodet.schema import IMPOSTER, MITOTIC_FIGURE, Dataset, ImageRecord, Point

# MIDOG category names (and TUPAC16's) -> schema label
CATEGORY_LABEL = {
    MITOTIC_FIGURE: MITOTIC_FIGURE,
    IMPOSTER: IMPOSTER,
    "mitose": MITOTIC_FIGURE,
    "hard negative": IMPOSTER,
}

# MIDOG 2021: the scanner follows from the image number (challenge description).
MIDOG21_SCANNERS = (
    (1, 50, "Hamamatsu XR"),
    (51, 100, "Hamamatsu S360"),
    (101, 150, "Aperio CS2"),
    (151, 200, "Leica GT450"),
)
UNLABELLED_SCANNERS = {"Leica GT450"}  # the GT450 images carry no annotation at all

# Native pixel spacing (µm/px) of the MIDOG scanners at 40x, as the MIDOG 2021 / MIDOG++ papers
# give them (Aubreville et al., Med. Image Anal. 2023; Sci. Data 2023): 0.23 for both
# Hamamatsu scanners, 0.25 for the Aperio CS2 and the 3D Histech, 0.26 for the Leica GT450.
SCANNER_MPP = {
    "Hamamatsu XR": 0.23,
    "Hamamatsu S360": 0.23,
    "Aperio CS2": 0.25,
    "Leica GT450": 0.26,
    "3D Histech": 0.25,
}

# The misspelling in datasets_xvalidation.csv, and the AMi-Br crop table's long name.
SCANNER_SPELLING = {"Hamammatsu XR": "Hamamatsu XR", "Aperio ScanScope CS2": "Aperio CS2"}


def midog21_scanner(image_id: int) -> str:
    for lo, hi, name in MIDOG21_SCANNERS:
        if lo <= image_id <= hi:
            return name
    return "unknown"


def _load_json(path: Path) -> dict:
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise MitodetError(path, "not MIDOG-shaped JSON: top level is not an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise MitodetError(path, f"not MIDOG-shaped JSON: missing list {key!r}")
    return doc


def clamp_inside(
    x: float, y: float, width: int | None, height: int | None, tolerance: float, source, what: str
) -> tuple[float, float]:
    """Check a point lies in the image; within ``tolerance`` px of the border it is clamped onto it.

    The tolerance is for annotation boxes cut by the image border, whose centre falls just
    outside (2 of the 26286 MIDOG++ boxes); anything farther is an error.
    """
    if width is None or height is None:
        return x, y
    if not (-tolerance <= x <= width - 1 + tolerance and -tolerance <= y <= height - 1 + tolerance):
        raise MitodetError(source, f"{what}: point ({x:g}, {y:g}) lies outside the {width}x{height} image")
    return min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)


def _parse_coco(path: Path, doc: dict, name: str, image_root: Path | None) -> tuple[Dataset, dict[int, ImageRecord]]:
    categories = {}
    for c in doc["categories"]:
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise MitodetError(path, f"not MIDOG-shaped JSON: bad category entry {c!r}")
        label = CATEGORY_LABEL.get(str(c["name"]).strip().lower())
        if label is None:
            raise MitodetError(path, f"unknown category name {c['name']!r}")
        categories[c["id"]] = label
    records: dict[int, ImageRecord] = {}
    for im in doc["images"]:
        if not isinstance(im, dict) or not all(k in im for k in ("id", "file_name", "width", "height")):
            raise MitodetError(path, f"image entry lacks id/file_name/width/height: {str(im)[:80]}")
        if im["id"] in records:
            raise MitodetError(path, f"image id {im['id']} appears twice")
        try:
            w, h = int(im["width"]), int(im["height"])
        except (TypeError, ValueError):
            raise MitodetError(path, f"image {im['id']}: width/height are not integers") from None
        if w <= 0 or h <= 0:
            raise MitodetError(path, f"image {im['id']}: size {w}x{h} is not positive")
        fname = str(im["file_name"])
        records[im["id"]] = ImageRecord(
            id=fname, path=image_root / fname if image_root else None, width=w, height=h, domain={}
        )
    for a in doc["annotations"]:
        if not isinstance(a, dict) or not all(k in a for k in ("bbox", "category_id", "image_id")):
            raise MitodetError(path, f"annotation lacks bbox/category_id/image_id: {str(a)[:80]}")
        aid = a.get("id")
        what = f"annotation {aid}"
        bbox = a["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise MitodetError(path, f"{what}: bbox must be [x1, y1, x2, y2], got {bbox!r}")
        try:
            x1, y1, x2, y2 = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise MitodetError(path, f"{what}: bbox has non-numeric values {bbox!r}") from None
        if x2 < x1 or y2 < y1:
            raise MitodetError(path, f"{what}: bbox {bbox!r} has x2 < x1 or y2 < y1 (expected [x1, y1, x2, y2])")
        if a["category_id"] not in categories:
            raise MitodetError(path, f"{what}: unknown category_id {a['category_id']!r}")
        rec = records.get(a["image_id"])
        if rec is None:
            raise MitodetError(path, f"{what}: image id {a['image_id']!r} does not exist")
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        cx, cy = clamp_inside(cx, cy, rec.width, rec.height, max(x2 - x1, y2 - y1) / 2, path, f"{what} in {rec.id}")
        rec.points.append(Point(cx, cy, categories[a["category_id"]], aid if isinstance(aid, int) else None))
    return Dataset(name, list(records.values())), records


def load_midog_json(path: str | os.PathLike, image_root: str | os.PathLike | None = None) -> Dataset:
    """MIDOG 2021 ``MIDOG.json``: scanner from the image number; the Leica GT450 images are unlabelled."""
    path = Path(path)
    doc = _load_json(path)
    ds, records = _parse_coco(path, doc, "MIDOG 2021", Path(image_root) if image_root else None)
    for iid, rec in records.items():
        scanner = midog21_scanner(int(iid)) if str(iid).isdigit() else "unknown"
        rec.domain.update(scanner=scanner, tumor_type="human breast cancer", species="human")
        rec.labelled = scanner not in UNLABELLED_SCANNERS
        if not rec.labelled and rec.points:
            raise MitodetError(
                path, f"image {rec.id} ({scanner}) should be unlabelled but has {len(rec.points)} annotations"
            )
    return ds


def _read_xval(path: Path) -> dict[int, dict[str, str]]:
    with csv_errors(path):
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh, delimiter=";"))
    need = {"Slide", "Tumor", "Scanner", "Origin", "Species"}
    if not rows or not need <= set(rows[0]):
        raise MitodetError(path, f"not a MIDOG++ domain table: needs ';'-separated columns {sorted(need)}")
    out = {}
    for n, r in enumerate(rows, start=2):
        try:
            sid = int(r["Slide"])
        except (TypeError, ValueError):
            raise MitodetError(path, f"line {n}: Slide {r['Slide']!r} is not an image id") from None
        scanner = r["Scanner"].strip()
        out[sid] = {
            "tumor_type": r["Tumor"].strip(),
            "scanner": SCANNER_SPELLING.get(scanner, scanner),
            "lab": r["Origin"].strip(),
            "species": r["Species"].strip().lower(),
            "xval_split": (r.get("Dataset") or "").strip(),
        }
    return out


def load_midogpp(json_path: str | os.PathLike, xval_csv: str | os.PathLike | None = None, image_root=None) -> Dataset:
    """MIDOG++: tumour type from the JSON; scanner, lab, species from ``datasets_xvalidation.csv``.

    Without ``xval_csv`` the table beside the JSON is used when present. Images absent from the
    table and without annotations (the 50 Leica GT450 breast images) are unlabelled.
    """
    path = Path(json_path)
    doc = _load_json(path)
    ds, records = _parse_coco(path, doc, "MIDOG++", Path(image_root) if image_root else None)
    if xval_csv is None and (path.parent / "datasets_xvalidation.csv").exists():
        xval_csv = path.parent / "datasets_xvalidation.csv"
    table = _read_xval(Path(xval_csv)) if xval_csv else {}
    if table:
        missing = set(table) - set(records)
        if missing:
            raise MitodetError(xval_csv, f"slide ids {sorted(missing)[:5]} do not exist in {path.name}")
    images_by_id = {im["id"]: im for im in doc["images"]}
    for iid, rec in records.items():
        tumor = str(images_by_id[iid].get("tumor_type", "unknown"))
        rec.domain["tumor_type"] = tumor
        row = table.get(iid)
        if row:
            # the JSON's tumour name wins (the table says "canine lymphoma" for "canine lymphosarcoma")
            rec.domain.update({k: v for k, v in row.items() if k != "tumor_type"})
        else:  # not in the domain table (MIDOG++ lists only annotated images): the GT450 breast images
            rec.labelled = bool(rec.points)
            if tumor == "human breast cancer" and str(iid).isdigit():
                rec.domain.update(scanner=midog21_scanner(int(iid)), lab="UMC Utrecht")
        rec.domain.setdefault(
            "species", "canine" if tumor.startswith("canine") else "human" if tumor.startswith("human") else "unknown"
        )
    return ds


MIDOG_BOX_HALF = 25.0  # MIDOG boxes are 50x50 px
MIDOG2022_COLUMNS = ("x", "y", "label", "filename")
MIDOG2022_LABEL = {"1": MITOTIC_FIGURE, "0": IMPOSTER}

# Scanner of each MIDOG 2022 tumour type (the MIDOG 2022 challenge description, as in the
# MIDOG++ domain table); human breast cancer follows the MIDOG 2021 image numbers instead.
MIDOG2022_SCANNER = {
    "canine lymphoma": "3D Histech",
    "canine lung cancer": "3D Histech",
    "canine cutaneous mast cell tumor": "Aperio CS2",
    "human neuroendocrine tumor": "Hamamatsu XR",
}


def load_midog2022_csv(path: str | os.PathLike, image_root: str | os.PathLike | None = None) -> Dataset:
    """MIDOG 2022 point table (x, y, label 1=MF/0=imposter, filename, slide, split, tumortype).

    The table has no image sizes, so points are only checked against the top/left border; ``split``
    (the table's own train/val) is kept as ``domain["split"]``.
    """
    path = Path(path)
    with csv_errors(path):
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            if not set(MIDOG2022_COLUMNS) <= set(fields):
                raise MitodetError(path, f"not a MIDOG 2022 point table: needs columns {','.join(MIDOG2022_COLUMNS)}")
            records: dict[str, ImageRecord] = {}
            for n, r in enumerate(reader, start=2):
                where = f"line {n}"
                try:
                    x, y = float(r["x"]), float(r["y"])
                except (TypeError, ValueError):
                    raise MitodetError(path, f"{where}: x/y are not numbers ({r['x']!r}, {r['y']!r})") from None
                if x < -MIDOG_BOX_HALF or y < -MIDOG_BOX_HALF:
                    raise MitodetError(path, f"{where}: point ({x:g}, {y:g}) lies outside the image {r['filename']}")
                x, y = max(x, 0.0), max(y, 0.0)  # centre of a box cut by the border (see clamp_inside)
                label = MIDOG2022_LABEL.get(str(r["label"]).strip())
                if label is None:
                    raise MitodetError(
                        path, f"{where}: unknown label {r['label']!r} (expected 1 = mitotic figure, 0 = imposter)"
                    )
                fname = r["filename"].strip()
                rec = records.get(fname)
                if rec is None:
                    tumor = (r.get("tumortype") or "unknown").strip()
                    stem = Path(fname).stem
                    scanner = (
                        midog21_scanner(int(stem))
                        if tumor == "human breast cancer" and stem.isdigit()
                        else MIDOG2022_SCANNER.get(tumor, "unknown")
                    )
                    domain = {
                        "tumor_type": tumor,
                        "scanner": scanner,
                        "species": tumor.split()[0] if tumor.startswith(("human", "canine")) else "unknown",
                    }
                    if r.get("split"):
                        domain["split"] = r["split"].strip()
                    rec = records[fname] = ImageRecord(
                        id=fname, path=Path(image_root) / fname if image_root else None, domain=domain
                    )
                rec.points.append(Point(x, y, label))
    return Dataset("MIDOG 2022", list(records.values()))


def load_annotations(path: str | os.PathLike, image_root: str | os.PathLike | None = None) -> Dataset:
    """Sniff the format (MIDOG 2021 JSON, MIDOG++ JSON, MIDOG 2022 CSV) and load it."""
    path = Path(path)
    if not path.exists():
        raise MitodetError(path, "file not found")
    if path.suffix.lower() == ".csv":
        return load_midog2022_csv(path, image_root)
    doc = _load_json(path)
    is_pp = any("tumor_type" in im for im in doc["images"][:5] if isinstance(im, dict)) or any(
        "labels" in a for a in doc["annotations"][:5] if isinstance(a, dict)
    )
    return load_midogpp(path, image_root=image_root) if is_pp else load_midog_json(path, image_root)
