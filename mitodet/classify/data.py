"""Labelled mitotic-figure crops (atypical or normal) at the model spacing.

Each crop is read at its known spacing, resampled to the model spacing by the one spacing rule
(:func:`mitodet.resample.resample`) and cut to a centred ``window`` (reflection-padded where a
crop is smaller), so a figure reaches the classifier exactly as ``mitodet detect`` hands it over.
The split is by group (MIDOG 2021 source image; each AtNorM-MD crop alone) and stratified by
source, scanner and label, or read from a split file (the bundled detectors' split keeps their
validation crops unseen by both networks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from mitodet.data.crops import load_atnorm_crops, load_midog21_crops
from mitodet.data.split import read_split, split_dataset
from mitodet.errors import MitodetError
from mitodet.io.image import read_image
from mitodet.resample import resample
from mitodet.schema import DEFAULT_MPP, Dataset, ImageRecord

WINDOW = 112  # px at the model spacing: the largest centred square every 128-px crop (0.23-0.25 µm/px) holds
MIDOG21, ATNORM = "MIDOG 2021", "AtNorM-MD"  # the sources a report is given for


def centred_square(image: np.ndarray, side: int) -> np.ndarray:
    """The centred ``side`` x ``side`` part of ``image`` (reflection-padded where it is smaller)."""
    h, w = image.shape[:2]
    ph, pw = max(0, side - h), max(0, side - w)
    if ph or pw:
        widths = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
        image = np.pad(image, widths, mode="reflect") if ph < h and pw < w else np.pad(image, widths, mode="edge")
        h, w = image.shape[:2]
    y, x = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(image[y : y + side, x : x + side])


@dataclass
class CropSet:
    """Crops at the model spacing: ``windows`` uint8 [N, S, S, 3], ``atypical`` bool [N]."""

    ids: list[str]
    windows: np.ndarray
    atypical: np.ndarray
    source: list[str]  # MIDOG21 or ATNORM
    domain: list[str]  # scanner (MIDOG 2021) or ATNORM

    def subset(self, ids) -> CropSet:
        where = {k: i for i, k in enumerate(self.ids)}
        idx = [where[k] for k in ids if k in where]
        return CropSet(
            [self.ids[i] for i in idx],
            self.windows[idx],
            self.atypical[idx],
            [self.source[i] for i in idx],
            [self.domain[i] for i in idx],
        )

    def __len__(self) -> int:
        return len(self.ids)


def _label(rec: ImageRecord) -> bool:
    value = str(rec.domain.get("atypical", "")).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise MitodetError(rec.path, f"atypical label {value!r} is neither true nor false")


def labelled_crop_records(crops: str | None, atnorm: str | None) -> Dataset:
    """The records of the labelled crop sets (``domain["atypical"]`` set on each)."""
    records: list[ImageRecord] = []
    if crops:
        records += list(load_midog21_crops(crops))
    if atnorm:
        records += list(load_atnorm_crops(atnorm))
    if not records:
        raise MitodetError(None, "no labelled crops: give the MIDOG 2021 crops and/or AtNorM-MD")
    return Dataset("labelled crops", records)


def read_crops(records, window: int = WINDOW, model_mpp: float = DEFAULT_MPP) -> CropSet:
    """Read, resample and cut every record -> :class:`CropSet`."""
    wins, labels, source, domain = [], [], [], []
    for rec in records:
        image, mpp = read_image(rec.path, rec.mpp)
        image = resample(image, mpp or rec.mpp, model_mpp)[0]
        wins.append(centred_square(image, window))
        labels.append(_label(rec))
        src = ATNORM if rec.domain.get("source") == "atnorm_md" else MIDOG21
        source.append(src)
        domain.append(rec.domain.get("scanner", src) if src == MIDOG21 else ATNORM)
    return CropSet(
        [r.id for r in records],
        np.stack(wins) if wins else np.zeros((0, window, window, 3), np.uint8),
        np.asarray(labels, bool),
        source,
        domain,
    )


def split_crops(
    records: Dataset, split_file: str | os.PathLike | None, val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[str], list[str]]:
    """(train ids, val ids): from ``split_file`` where given (crops it does not list are split by
    the seeded rule), else by group, stratified by source, scanner and label."""
    listed: dict[str, str] = {}
    if split_file:
        train, val = read_split(split_file)
        listed = {**dict.fromkeys(train, "train"), **dict.fromkeys(val, "val")}
    rest = Dataset("unlisted", [r for r in records if r.id not in listed])
    for rec in rest:
        rec.domain["label"] = "atypical" if _label(rec) else "normal"
    t2, v2 = split_dataset(rest, val_fraction, seed, ("source", "scanner", "label")) if len(rest) else ([], [])
    listed.update(dict.fromkeys(t2, "train"))
    listed.update(dict.fromkeys(v2, "val"))
    ids = [r.id for r in records]
    return [i for i in ids if listed[i] == "train"], [i for i in ids if listed[i] == "val"]
