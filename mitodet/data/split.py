"""Train/validation split by image group, stratified by domain and by mitosis count.

Group = ``domain["source_image"]`` when present (crops of one source image never
straddle the split), else the image id. Within each domain stratum the groups are
sorted by mitosis count (ties broken at random) and cut into ``round(n * val_fraction)``
consecutive blocks; one random group of each block goes to validation. So every
stratum gives its share of images, spread evenly over low and high mitosis counts
(systematic sampling; the paper's MIDOG 2022 split is 283 / 71 images).
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_open
from mitodet.io.files import read_json
from mitodet.schema import Dataset, ImageRecord


def group_of(im: ImageRecord) -> str:
    return im.domain.get("source_image") or im.id


def split_dataset(
    ds: Dataset, val_fraction: float = 0.2, seed: int = 0, stratify: Sequence[str] = ("scanner",)
) -> tuple[list[str], list[str]]:
    """Return (train image ids, validation image ids); deterministic for a seed."""
    if not 0 < val_fraction < 1:
        raise MitodetError("--val-fraction", f"must be between 0 and 1, got {val_fraction}")
    if isinstance(stratify, str):
        stratify = (stratify,)
    groups: dict[str, list[ImageRecord]] = defaultdict(list)
    for im in ds:
        groups[group_of(im)].append(im)
    strata: dict[tuple, list[str]] = defaultdict(list)
    for g, ims in groups.items():
        key = tuple(ims[0].domain.get(k, "unknown") for k in stratify)
        strata[key].append(g)
    rng = random.Random(seed)
    val_groups: set[str] = set()
    for key in sorted(strata):
        gs = sorted(strata[key])
        tiebreak = {g: rng.random() for g in gs}
        gs.sort(key=lambda g: (sum(len(im.mitoses) for im in groups[g]), tiebreak[g]))
        n_val = round(len(gs) * val_fraction)
        for b in range(n_val):
            block = gs[b * len(gs) // n_val : (b + 1) * len(gs) // n_val]
            val_groups.add(rng.choice(block))
    train = [im.id for im in ds if group_of(im) not in val_groups]
    val = [im.id for im in ds if group_of(im) in val_groups]
    return train, val


def write_split(path: str | os.PathLike, train: Sequence[str], val: Sequence[str], **meta) -> None:
    """Write the split as JSON (atomically): ``{"train": [...], "val": [...], ...meta}``."""
    overlap = set(train) & set(val)
    if overlap:
        raise ValueError(f"images in both parts: {sorted(overlap)[:5]}")
    doc = {**meta, "n_train": len(train), "n_val": len(val), "train": list(train), "val": list(val)}
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)


def read_split(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Read a split written by :func:`write_split`."""
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("train"), list) or not isinstance(doc.get("val"), list):
        raise MitodetError(path, "not a split file: needs lists 'train' and 'val'")
    train, val = [str(i) for i in doc["train"]], [str(i) for i in doc["val"]]
    overlap = set(train) & set(val)
    if overlap:
        raise MitodetError(path, f"images in both train and val: {sorted(overlap)[:5]}")
    return train, val
