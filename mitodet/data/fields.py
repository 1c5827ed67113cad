"""Whole labelled fields: the MITOS-ATYPIA-14 frames, every mitosis labelled, plus hard negatives.

A *field* is an image in which every mitosis is labelled (``domain["labels"] = "exhaustive"``):
each unlabelled cell is a true negative, and the cells a pathologist marked and the panel judged
not mitotic are imposters (real hard negatives). The panel's confidence is kept as the point's
training weight: a mitosis only two of three pathologists called (confidence 0.65) counts
``low_confidence_weight`` (down-weighted, not ignored: with 135 mitoses in all, each one
matters); for scoring it stays a mitosis, as the challenge counted it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from PIL import Image

from mitodet.data.midog import clamp_inside
from mitodet.errors import MitodetError
from mitodet.io.files import csv_errors
from mitodet.schema import IMPOSTER, MITOTIC_FIGURE, Dataset, ImageRecord, Point

MITOS_ATYPIA14_MPP = 0.2455  # Aperio ScanScope XT at x40 (the challenge's spacing; not in the JPEGs)
LOW_CONFIDENCE = 0.7  # below this panel confidence a mitosis is "uncertain" (0.65: two of three)
LOW_CONFIDENCE_WEIGHT = 0.5
LABEL_OF = {"mitosis": MITOTIC_FIGURE, "non-mitosis": IMPOSTER}


def _number(row: dict, key: str, where: str) -> float:
    try:
        return float(row[key])
    except (TypeError, ValueError):
        raise MitodetError(where, f"{key} {row.get(key)!r} is not a number") from None


def load_mitos_atypia14(root: str | os.PathLike, low_confidence_weight: float = LOW_CONFIDENCE_WEIGHT) -> Dataset:
    """The MITOS-ATYPIA-14 frames (``frames/<frame>.jpg`` + ``labels.csv``) as exhaustive fields.

    Every frame of ``frames/`` is a record, those without a mitosis included (their cells are all
    negatives). Ids are ``ma14_<frame>``; ``domain["source_image"]`` is the frame, so a split
    by source image splits by frame."""
    root = Path(root)
    table = root / "labels.csv"
    if not (root / "frames").is_dir():
        raise MitodetError(root, "no frames/ folder: not a MITOS-ATYPIA-14 frame folder")
    if not table.is_file():
        raise MitodetError(table, "file not found")
    records: dict[str, ImageRecord] = {}
    for f in sorted((root / "frames").glob("*.jpg")):
        with Image.open(f) as im:
            w, h = im.size
        records[f.stem] = ImageRecord(
            id=f"ma14_{f.stem}",
            path=f,
            width=w,
            height=h,
            mpp=MITOS_ATYPIA14_MPP,
            domain={
                "source": "mitos_atypia14",
                "scanner": "Aperio XT (MITOS-ATYPIA-14)",
                "source_image": f.stem,
                "tumor_type": "human breast cancer",
                "species": "human",
                "labels": "exhaustive",
            },
        )
    if not records:
        raise MitodetError(root / "frames", "no .jpg frame")
    with csv_errors(table), open(table, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    need = {"frame", "x", "y", "label", "confidence"}
    if rows and not need <= set(rows[0]):
        raise MitodetError(table, f"missing columns {sorted(need - set(rows[0]))}")
    for n, r in enumerate(rows, start=2):
        where = f"{table}: line {n}"
        rec = records.get(r["frame"])
        if rec is None:
            raise MitodetError(where, f"frame {r['frame']!r} is not in frames/")
        label = LABEL_OF.get(r["label"].strip().lower())
        if label is None:
            raise MitodetError(where, f"unknown label {r['label']!r} (expected mitosis or non-mitosis)")
        x, y, conf = (_number(r, k, where) for k in ("x", "y", "confidence"))
        x, y = clamp_inside(x, y, rec.width, rec.height, 0, table, f"line {n}")
        weight = low_confidence_weight if label == MITOTIC_FIGURE and conf < LOW_CONFIDENCE else 1.0
        rec.points.append(Point(x, y, label, n, weight))
    return Dataset("MITOS-ATYPIA-14 fields", list(records.values()))


FIELDS_TABLE_COLUMNS = ["image", "mpp", "x", "y", "label", "weight"]


def load_fields_table(path: str | os.PathLike, exhaustive: bool = True, source: str = "lab fields") -> Dataset:
    """A lab's own labelled images, as ``mitodet finetune`` writes them: one CSV row per point
    (``image, mpp, x, y, label[, weight]``; image paths relative to the table's folder allowed;
    a row with empty x and y lists an image without points). With ``exhaustive`` every unlabelled
    cell of an image is a negative (a field); otherwise only cells far from the points are
    (crop-style labels). Ids are ``<source image stem>`` made unique; ``source_image`` is the
    image, so a split by source image splits by image."""
    path = Path(path)
    with csv_errors(path), open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not set(FIELDS_TABLE_COLUMNS[:5]) <= set(rows[0]):
        raise MitodetError(path, f"expected a CSV table with the columns {', '.join(FIELDS_TABLE_COLUMNS[:5])}")
    records: dict[str, ImageRecord] = {}
    for n, r in enumerate(rows, start=2):
        where = f"{path}: line {n}"
        image = Path(r["image"])
        image = image if image.is_absolute() else path.parent / image
        key = str(image)
        if key not in records:
            if not image.is_file():
                raise MitodetError(where, f"image {image} not found")
            with Image.open(image) as im:
                w, h = im.size
            stem, i = image.stem, 1
            while stem in {rec.id for rec in records.values()}:
                stem, i = f"{image.stem}_{i}", i + 1
            records[key] = ImageRecord(
                id=stem,
                path=image,
                width=w,
                height=h,
                mpp=_number(r, "mpp", where),
                domain={
                    "source": source,
                    "scanner": source,
                    "source_image": key,
                    "labels": "exhaustive" if exhaustive else "partial",
                },
            )
        rec = records[key]
        if not (r.get("x") or "").strip() and not (r.get("y") or "").strip():
            continue
        label = {"mitotic figure": MITOTIC_FIGURE, "non-mitotic figure": IMPOSTER}.get(r["label"].strip().lower())
        if label is None:
            raise MitodetError(where, f"unknown label {r['label']!r} (mitotic figure or non-mitotic figure)")
        x, y = _number(r, "x", where), _number(r, "y", where)
        weight = _number(r, "weight", where) if (r.get("weight") or "").strip() else 1.0
        x, y = clamp_inside(x, y, rec.width, rec.height, 0, path, f"line {n}")
        rec.points.append(Point(x, y, label, n, weight))
    return Dataset(source, list(records.values()))
