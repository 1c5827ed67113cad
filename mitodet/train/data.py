"""From a config to the training and validation patch pools of a run.

Labelled images (the MIDOG 2021 crops, the AtNorM-MD crops and/or full MIDOG images) are
filtered on their domain (``data.include`` / ``data.exclude``), split by source image into
train / val, and turned into pools; tissue tiles and mined negatives join the training pool
only. Every image is read as detection will see it (:func:`read_for_training`): black padding
bands cut, then resampled from its known spacing to the model spacing with the detector's own
resampling rule (:mod:`mitodet.resample`). Full-size images are cut into overlapping regions
(``REGION`` px, each owning its central half) so only the parts around labelled cells, plus a
seeded sample of the rest, are held in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mitodet.data.crops import load_atnorm_crops, load_midog21_crops
from mitodet.data.fields import load_fields_table, load_mitos_atypia14
from mitodet.data.midog import load_annotations
from mitodet.data.split import read_split, split_dataset
from mitodet.errors import MitodetError
from mitodet.io.image import content_box, read_image, read_spacing
from mitodet.io.negatives import read_negative_table
from mitodet.resample import resample, to_output
from mitodet.schema import DEFAULT_MPP, Dataset, ImageRecord, Point
from mitodet.train.patches import (
    KINDS,
    PoolImage,
    add_hard_anchors,
    labelled_image,
    list_images,
    read_hard_anchors,
    read_keep_list,
    restrict_negatives,
    tissue_image,
)

REGION = 512  # px side of the regions cut from full-size images
FIELD_MAX = 2048  # whole labelled fields up to this side are held whole (every cell a negative)
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
    """One validation image for calibration/detection at its native spacing (the detector
    resamples it, as it would any input); black padding bands are cut and the points follow.
    ``.image`` (and the points) are read on first use."""

    id: str
    path: Path | None
    mpp: float
    labelled_points: list[Point]  # the mitotic figures, in the file's pixels
    domain: dict = field(default_factory=dict)
    _pixels: np.ndarray | None = None
    _points: list[Point] = field(default_factory=list)

    def _load(self) -> None:
        pixels = _read(self.path, self.mpp)[0]
        y0, y1, x0, x1 = content_box(pixels)
        self._pixels = np.ascontiguousarray(pixels[y0:y1, x0:x1])
        self._points = [
            Point(p.x - x0, p.y - y0, p.label) for p in self.labelled_points if x0 <= p.x < x1 and y0 <= p.y < y1
        ]

    @property
    def image(self) -> np.ndarray:
        if self._pixels is None:
            self._load()
        return self._pixels  # type: ignore[return-value]

    @property
    def points(self) -> list[Point]:
        """The mitotic figures in the pixels of :attr:`image`."""
        if self._pixels is None:
            self._load()
        return self._points


def _read(path, mpp=None):
    pixels, m = read_image(path, mpp)
    return pixels, (m or DEFAULT_MPP)


def read_for_training(path, mpp: float | None, points: list[Point], data_cfg) -> tuple[np.ndarray, float, list[Point]]:
    """An image as training sees it -> (pixels, spacing, points in those pixels).

    Black padding bands along the edges are cut; with ``data.resample`` the image is resampled
    from ``mpp`` (or its stored spacing) to ``data.model_mpp`` by the detector's rule, so a
    mitosis has the same size in pixels here as in ``mitodet detect``."""
    pixels, spacing = _read(path, mpp)
    y0, y1, x0, x1 = content_box(pixels)
    if (y0, y1, x0, x1) != (0, pixels.shape[0], 0, pixels.shape[1]):
        pixels = np.ascontiguousarray(pixels[y0:y1, x0:x1])
        points = [replace(p, x=p.x - x0, y=p.y - y0) for p in points if x0 <= p.x < x1 and y0 <= p.y < y1]
    if data_cfg.resample:
        pixels, sx, sy = resample(pixels, spacing, data_cfg.model_mpp, data_cfg.interpolation)
        if (sx, sy) != (1.0, 1.0):
            moved = [(to_output(p.x, p.y, sx, sy), p) for p in points]
            points = [replace(p, x=float(x), y=float(y)) for (x, y), p in moved]
            spacing = data_cfg.model_mpp
    h, w = pixels.shape[:2]
    points = [p for p in points if -0.5 <= p.x < w - 0.5 and -0.5 <= p.y < h - 0.5]
    return pixels, spacing, points


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
    if d.atnorm:
        records += list(load_atnorm_crops(d.atnorm))
    if d.fields and Path(d.fields).is_file():  # a lab's own fields table (mitodet finetune)
        records += list(load_fields_table(d.fields, d.fields_exhaustive))
    elif d.fields:
        records += list(load_mitos_atypia14(d.fields, d.low_confidence_weight))
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
        # a source the file does not know (one added since) is split by the seeded rule
        new = [r for r in records if r.id not in set(train_ids) | set(val_ids)]
        if new and s.val_fraction > 0:
            t, v = split_dataset(
                Dataset("new", new), val_fraction=s.val_fraction, seed=s.seed, stratify=tuple(s.stratify)
            )
            train_ids, val_ids = train_ids + list(t), val_ids + list(v)
        elif new:
            train_ids += [r.id for r in new]
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
    if max(h, w) <= REGION or (rec.domain.get("labels") == "exhaustive" and max(h, w) <= FIELD_MAX):
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
                replace(p, x=p.x - tx0, y=p.y - ty0)
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
        pixels, mpp, points = read_for_training(rec.path, rec.mpp, rec.points, d)
        rec = ImageRecord(rec.id, rec.path, pixels.shape[1], pixels.shape[0], mpp, True, rec.domain, points)
        for sub, px, core in _regions(rec, pixels, rng):
            # crops with only their centre mitosis labelled: other cells are negatives with some noise
            weight = cfg.dense.unlabelled_weight if rec.domain.get("labels") == "centre only" else 1.0
            whole_field = rec.domain.get("labels") == "exhaustive"
            im = labelled_image(
                sub,
                np.ascontiguousarray(px),
                mpp,
                d.field_grid if whole_field else d.crop_grid,
                d.border,
                neg_weight=weight,
                kind="field" if whole_field else "crop",
                repeat=d.field_oversample if whole_field else 1,
            )
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
    scale: dict[str, tuple[float, float]] = {}  # tissue tile -> input px per pool px (mined points follow)
    for f in tissue_files:
        pixels, spacing = _read(f)  # _read falls back to DEFAULT_MPP where no spacing is stored
        sx = sy = 1.0
        if d.resample:
            pixels, sx, sy = resample(pixels, spacing, d.model_mpp, d.interpolation)
            spacing = d.model_mpp if (sx, sy) != (1.0, 1.0) else spacing
        im = tissue_image(str(f.resolve()), pixels, spacing, d.tissue_grid, d.border, d.tissue_max_brightness)
        by_path[im.id], scale[im.id] = im, (sx, sy)
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
                pixels, spacing, points = read_for_training(path, None, points, d)
                im = by_path[path] = PoolImage(path, pixels, spacing)
                train.append(im)
            elif scale[path] != (1.0, 1.0):
                points = [Point(*to_output(p.x, p.y, *scale[path]), p.label) for p in points]
            h, w = im.pixels.shape[:2]
            im.negatives += [
                (int(round(p.y)), int(round(p.x)), mined_kind) for p in points if 0 <= p.y < h and 0 <= p.x < w
            ]
    if d.keep_negatives:
        restrict_negatives(train, read_keep_list(d.keep_negatives))
    for table in d.hard_negatives:
        add_hard_anchors(train, read_hard_anchors(table))
    return train, val


def validation_images(split: SplitData) -> list[ValImage]:
    """The validation images of a split (pixels read lazily)."""
    return [
        ValImage(r.id, Path(r.path) if r.path else None, r.mpp or DEFAULT_MPP, list(r.mitoses), dict(r.domain))
        for r in split.subset(split.val_ids)
    ]
