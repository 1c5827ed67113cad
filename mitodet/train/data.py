"""From a config to the training and validation patch pools of a run.

Labelled images (the crop set and/or full MIDOG images) are filtered on their domain
(``data.include`` / ``data.exclude``), split by source image into train / val, and
turned into pools; tissue tiles and mined negatives join the training pool only.
Full-size images are cut into overlapping regions (``REGION`` px, each owning its
central half) so only the parts around labelled cells, plus a seeded sample of the
rest, are held in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mitodet.data.crops import load_midog21_crops
from mitodet.data.midog import load_annotations
from mitodet.data.split import read_split, split_dataset
from mitodet.errors import MitodetError
from mitodet.io.image import read_image, read_spacing
from mitodet.io.negatives import read_negative_table
from mitodet.schema import DEFAULT_MPP, Dataset, ImageRecord, Point
from mitodet.train.patches import (
    KINDS,
    PoolImage,
    labelled_image,
    list_images,
    read_keep_list,
    restrict_negatives,
    tissue_image,
)

REGION = 512  # px side of the regions cut from full-size images
BACKGROUND_REGIONS = 0.1  # fraction of unlabelled regions of a full image kept (for negatives)


@dataclass
class SplitData:
    """Labelled records of a run, already filtered, with the train/val split."""

    records: list[ImageRecord]
    train_ids: list[str]
    val_ids: list[str]

    def subset(self, ids) -> list[ImageRecord]:
        keep = set(ids)
        return [r for r in self.records if r.id in keep]


@dataclass
class ValImage:
    """One validation image for calibration/detection: ``.image`` is read on first use."""

    id: str
    path: Path | None
    mpp: float
    points: list[Point]  # the mitotic figures
    domain: dict = field(default_factory=dict)
    _pixels: np.ndarray | None = None

    @property
    def image(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = _read(self.path, self.mpp)[0]
        return self._pixels


def _read(path, mpp=None):
    pixels, m = read_image(path, mpp)
    return pixels, (m or DEFAULT_MPP)


def _domain_ok(rec: ImageRecord, include: dict, exclude: dict) -> bool:
    for key, values in include.items():
        if rec.domain.get(key) not in values:
            return False
    for key, values in exclude.items():
        if rec.domain.get(key) in values:
            return False
    return True


def _resolve_path(rec: ImageRecord, images_dir: str) -> Path | None:
    """The file of a MIDOG record in ``images_dir`` (by file name, or id with a .tif/.tiff suffix), or None."""
    if rec.path is not None and Path(rec.path).is_file():
        return Path(rec.path)
    names = [rec.path.name] if rec.path is not None else []
    names += [rec.id, f"{rec.id}.tiff", f"{rec.id}.tif"]
    if rec.id.isdigit():
        names += [f"{int(rec.id):03d}.tiff", f"{int(rec.id):03d}.tif"]
    for n in names:
        p = Path(images_dir) / n
        if p.is_file():
            return p
    return None


def midog_records(annotations: str, images_dir: str) -> list[ImageRecord]:
    """Labelled records of a MIDOG annotation file with their image files and TIFF spacing.

    Every labelled image the file lists must be in ``images_dir``: a missing one is a one-line
    error naming the annotation file, raised before any pixel is read.
    """
    records, missing = [], []
    for rec in load_annotations(annotations, images_dir):
        if not rec.labelled:
            continue
        path = _resolve_path(rec, images_dir)
        if path is None:
            missing.append(rec.id)
            continue
        rec.path = path
        records.append(rec)
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise MitodetError(
            annotations,
            f"{len(missing)} of the images it lists are not in data.images_dir "
            f"{images_dir}: {', '.join(missing[:5])}{more}",
        )
    for rec in records:  # MIDOG spacings differ (0.23-0.25 µm/px): read from the TIFF tags
        rec.mpp = read_spacing(rec.path) or DEFAULT_MPP
    return records


def labelled_records(cfg) -> list[ImageRecord]:
    """Every labelled image named by the config, filtered on domain."""
    d = cfg.data
    records: list[ImageRecord] = []
    if d.crops:
        records += list(load_midog21_crops(d.crops))
    if d.annotations:
        records += midog_records(d.annotations, d.images_dir)
    kept = [r for r in records if _domain_ok(r, d.include, d.exclude)]
    if not kept:
        raise MitodetError(
            "data.include/exclude", f"no labelled image left out of {len(records)} after the domain filters"
        )
    return kept


def split_records(cfg, records: list[ImageRecord]) -> SplitData:
    """Train/val split (grouped by source image, stratified), or the one in ``split.file``."""
    s = cfg.split
    if s.file:
        train_ids, val_ids = read_split(s.file)
        known = {r.id for r in records}
        train_ids = [i for i in train_ids if i in known]
        val_ids = [i for i in val_ids if i in known]
    elif s.val_fraction == 0:
        train_ids, val_ids = [r.id for r in records], []
    else:
        train_ids, val_ids = split_dataset(
            Dataset("train", records), val_fraction=s.val_fraction, seed=s.seed, stratify=tuple(s.stratify)
        )
        train_ids, val_ids = list(train_ids), list(val_ids)
    if not train_ids:
        raise MitodetError("split", "the training split is empty")
    return SplitData(records, train_ids, val_ids)


def _regions(
    rec: ImageRecord, pixels: np.ndarray, rng: np.random.Generator
) -> Iterator[tuple[ImageRecord, np.ndarray, tuple[int, int, int] | None]]:
    """Yield (sub-record, pixels, core) pieces: the whole image if small (core None), else regions
    owning their central half: core = (row, column, side) of that half inside the piece."""
    h, w = pixels.shape[:2]
    if max(h, w) <= REGION:
        yield rec, pixels, None
        return
    core, pad = REGION // 2, REGION // 4
    for y0 in range(0, h, core):
        for x0 in range(0, w, core):
            own = [p for p in rec.points if y0 <= p.y < y0 + core and x0 <= p.x < x0 + core]
            if not own and rng.random() >= BACKGROUND_REGIONS:
                continue
            ty0, tx0 = max(0, y0 - pad), max(0, x0 - pad)
            ty1, tx1 = min(h, y0 + core + pad), min(w, x0 + core + pad)
            near = [
                Point(p.x - tx0, p.y - ty0, p.label)
                for p in rec.points
                if ty0 - pad <= p.y < ty1 + pad and tx0 - pad <= p.x < tx1 + pad
            ]
            sub = ImageRecord(f"{rec.id}@{x0},{y0}", None, tx1 - tx0, ty1 - ty0, rec.mpp, True, rec.domain, near)
            # candidates only in the core (cores partition the image: no duplicates)
            yield sub, pixels[ty0:ty1, tx0:tx1], (y0 - ty0, x0 - tx0, core)


def _pool_images_from_records(records, cfg, seed: int, on_image: Callable[[], None]) -> list[PoolImage]:
    d = cfg.data
    rng = np.random.default_rng(seed)
    out = []
    for rec in records:
        pixels, mpp = _read(rec.path, rec.mpp)
        for sub, px, core in _regions(rec, pixels, rng):
            im = labelled_image(sub, np.ascontiguousarray(px), mpp, d.crop_grid, d.border)
            if core is not None:
                cy, cx, n = core
                im.positives = [p for p in im.positives if cy <= p[0] < cy + n and cx <= p[1] < cx + n]
                im.negatives = [q for q in im.negatives if cy <= q[0] < cy + n and cx <= q[1] < cx + n]
            out.append(im)
        on_image()
    return out


def train_val_images(
    cfg, split: SplitData, on_image: Callable[[int, int], None] | None = None
) -> tuple[list[PoolImage], list[PoolImage]]:
    """Pool images of the training side (labelled + tissue + mined) and the validation side.

    ``on_image(done, total)`` follows the loading (one call per file read)."""
    d = cfg.data
    tissue_files = list_images(d.tissue)
    mined_tables = [read_negative_table(p) for p in d.negatives]
    train_recs, val_recs = split.subset(split.train_ids), split.subset(split.val_ids)
    total = len(train_recs) + len(val_recs) + len(tissue_files) + sum(len(t) for t in mined_tables)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_image is not None:
            on_image(done, total)

    train = _pool_images_from_records(train_recs, cfg, cfg.seed, tick)
    val = _pool_images_from_records(val_recs, cfg, cfg.seed + 1, tick)
    by_path: dict[str, PoolImage] = {}
    for f in tissue_files:
        pixels, mpp = _read(f)  # _read falls back to DEFAULT_MPP where no spacing is stored
        im = tissue_image(str(f.resolve()), pixels, mpp, d.tissue_grid, d.border, d.tissue_max_brightness)
        by_path[im.id] = im
        train.append(im)
        tick()
    val_paths = {str(Path(r.path).resolve()) for r in val_recs if r.path is not None}
    mined_kind = KINDS.index("mined")
    for table in mined_tables:
        for path, points in table.items():
            tick()
            if path in val_paths:
                continue  # never train on validation images
            im = by_path.get(path)
            if im is None:
                pixels, mpp = _read(path, None)
                im = by_path[path] = PoolImage(path, pixels, mpp)
                train.append(im)
            h, w = im.pixels.shape[:2]
            im.negatives += [(int(round(p.y)), int(round(p.x)), mined_kind) for p in points if p.y < h and p.x < w]
    if d.keep_negatives:
        restrict_negatives(train, read_keep_list(d.keep_negatives))
    return train, val


def validation_images(split: SplitData) -> list[ValImage]:
    """The validation images of a split (pixels read lazily)."""
    return [
        ValImage(r.id, Path(r.path) if r.path else None, r.mpp or DEFAULT_MPP, list(r.mitoses), dict(r.domain))
        for r in split.subset(split.val_ids)
    ]
