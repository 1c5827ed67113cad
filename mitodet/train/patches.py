"""Patch sources of the paper's tile-based training, held in (device) memory.

Every source image is loaded once into one flat uint8 tensor; a patch is a window
gathered from it by index arithmetic, so a whole batch of windows from images of any
size is ONE gather on the device (no per-sample Python loop). Windows that cross an
image border are REFLECT-padded (numpy 'reflect'); negative centres are kept at least
``data.border`` px inside their image so that the mirrored part stays small.

Candidate centres:
- positives: every labelled mitotic figure;
- negatives (kind ``crop``): a grid over every labelled image (crops included), kept
  when at least 7.5 µm (30 px at 0.25 µm/px) from every labelled mitosis;
- ``imposter``: the "not mitotic figure" cells; ``mined``: negative tables (residual
  mining); ``tissue``: a grid over unlabelled tissue tiles (white background dropped).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mitodet.io.image import images_in
from mitodet.reflect import reflect_index
from mitodet.schema import ImageRecord, match_radius_px, um_to_px
from mitodet.stain import StainError, macenko_vectors

KINDS = ("crop", "imposter", "mined", "tissue", "hard", "field")
FAR = 1e9  # filler coordinate of the mitosis table: farther than any window
# Ruifrok & Johnston's H, E and residual OD vectors: the fallback stain matrix
REFERENCE_STAIN = np.array([[0.650, 0.704, 0.286], [0.072, 0.990, 0.105], [0.268, 0.570, 0.776]], dtype=np.float32)


@dataclass
class PoolImage:
    """One image of the pool with its candidate centres (pixel rows/cols)."""

    id: str
    pixels: np.ndarray  # HxWx3 uint8
    mpp: float
    positives: list[tuple[int, int]] = field(default_factory=list)  # (y, x)
    negatives: list[tuple[int, int, int]] = field(default_factory=list)  # (y, x, kind index)
    mitoses: list[tuple[float, float]] = field(default_factory=list)  # every labelled MF (y, x): dense labels
    neg_weight: float = 1.0  # weight of this image's negative cells in dense training
    mitosis_weight: list[float] = field(default_factory=list)  # per entry of ``mitoses`` (default 1)
    imposters: list[tuple[float, float]] = field(default_factory=list)  # (y, x): up-weighted dense negatives


@dataclass
class Pool:
    """All images in one flat uint8 tensor plus candidate centre tables (same device)."""

    ids: list[str]
    mpp: list[float]
    flat: torch.Tensor  # [sum(H*W*3)] uint8
    offset: torch.Tensor  # [n] int64
    height: torch.Tensor  # [n] int64
    width: torch.Tensor  # [n] int64
    pos: torch.Tensor  # [P, 3] int64 (image, y, x)
    neg: torch.Tensor  # [Q, 3] int64 (image, y, x), sorted by kind
    neg_kind: torch.Tensor  # [Q] int64 index into KINDS
    mitoses: torch.Tensor | None = None  # [n, K, 2] float32 (y, x) of every labelled MF, FAR-filled
    neg_weight: torch.Tensor | None = None  # [n] float32
    stain: torch.Tensor | None = None  # [n, 3, 3] Macenko H / E / residual OD rows (stain jitter)
    mitosis_weight: torch.Tensor | None = None  # [n, K] float32, per entry of ``mitoses``
    imposters: torch.Tensor | None = None  # [n, J, 2] float32 (y, x) of the imposters, FAR-filled

    @property
    def device(self) -> torch.device:
        return self.flat.device

    def kind_counts(self) -> dict[str, int]:
        c = torch.bincount(self.neg_kind.cpu(), minlength=len(KINDS))
        return {k: int(c[i]) for i, k in enumerate(KINDS)}

    def describe(self) -> dict:
        return {"images": len(self.ids), "positives": int(self.pos.shape[0]), "negatives": self.kind_counts()}

    def to(self, device) -> Pool:
        def t(x):
            return None if x is None else x.to(device)

        return Pool(
            self.ids,
            self.mpp,
            t(self.flat),
            t(self.offset),
            t(self.height),
            t(self.width),
            t(self.pos),
            t(self.neg),
            t(self.neg_kind),
            t(self.mitoses),
            t(self.neg_weight),
            t(self.stain),
            t(self.mitosis_weight),
            t(self.imposters),
        )

    def image(self, i: int) -> np.ndarray:
        """Pixels of image ``i`` (HxWx3 uint8, a CPU copy)."""
        h, w, o = int(self.height[i]), int(self.width[i]), int(self.offset[i])
        return self.flat[o : o + h * w * 3].cpu().numpy().reshape(h, w, 3)

    def gather(self, img: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: int) -> torch.Tensor:
        """Windows [B,3,size,size] uint8 centred on (cy, cx) of images ``img`` (reflect-padded)."""
        r = torch.arange(size, device=self.device) - size // 2
        h, w = self.height[img], self.width[img]
        ys = reflect_index(cy[:, None] + r[None], h[:, None])  # [B,S]
        xs = reflect_index(cx[:, None] + r[None], w[:, None])
        base = self.offset[img][:, None, None] + (ys[:, :, None] * w[:, None, None] + xs[:, None, :]) * 3
        idx = base[:, None] + torch.arange(3, device=self.device)[None, :, None, None]  # [B,3,S,S]
        return self.flat[idx]


def build_pool(images: list[PoolImage]) -> Pool:
    """Pack images and their candidates into a CPU :class:`Pool`."""
    sizes = [im.pixels.size for im in images]
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if images else np.zeros(0, np.int64)
    flat = (
        torch.from_numpy(np.concatenate([np.ascontiguousarray(im.pixels).reshape(-1) for im in images]))
        if images
        else torch.zeros(0, dtype=torch.uint8)
    )
    pos = [(i, y, x) for i, im in enumerate(images) for y, x in im.positives]
    neg = [(k, i, y, x) for i, im in enumerate(images) for y, x, k in im.negatives]
    neg.sort(key=lambda t: t[0])  # stable: grouped by kind, image order kept
    pos_t = torch.tensor(pos, dtype=torch.int64).reshape(-1, 3)
    neg_t = torch.tensor([t[1:] for t in neg], dtype=torch.int64).reshape(-1, 3)
    kind_t = torch.tensor([t[0] for t in neg], dtype=torch.int64)
    k = max([1] + [len(im.mitoses) for im in images])
    mitoses = torch.full((len(images), k, 2), FAR, dtype=torch.float32)
    mitosis_weight = torch.ones((len(images), k), dtype=torch.float32)
    j = max([1] + [len(im.imposters) for im in images])
    imposters = torch.full((len(images), j, 2), FAR, dtype=torch.float32)
    for i, im in enumerate(images):
        if im.mitoses:
            mitoses[i, : len(im.mitoses)] = torch.tensor(im.mitoses, dtype=torch.float32)
        if im.mitosis_weight:
            mitosis_weight[i, : len(im.mitosis_weight)] = torch.tensor(im.mitosis_weight, dtype=torch.float32)
        if im.imposters:
            imposters[i, : len(im.imposters)] = torch.tensor(im.imposters, dtype=torch.float32)
    return Pool(
        ids=[im.id for im in images],
        mpp=[im.mpp for im in images],
        flat=flat,
        offset=torch.from_numpy(offset),
        height=torch.tensor([im.pixels.shape[0] for im in images], dtype=torch.int64),
        width=torch.tensor([im.pixels.shape[1] for im in images], dtype=torch.int64),
        pos=pos_t,
        neg=neg_t,
        neg_kind=kind_t,
        mitoses=mitoses,
        neg_weight=torch.tensor([im.neg_weight for im in images], dtype=torch.float32),
        mitosis_weight=mitosis_weight,
        imposters=imposters,
    )


def grid_centres(h: int, w: int, stride: int, border: int) -> np.ndarray:
    """(y, x) centres of a regular grid at least ``border`` px inside an h x w image."""
    lo_y, hi_y = min(border, (h - 1) // 2), max(h - 1 - border, (h - 1) // 2)
    lo_x, hi_x = min(border, (w - 1) // 2), max(w - 1 - border, (w - 1) // 2)
    ys = np.arange(lo_y, hi_y + 1, stride)
    xs = np.arange(lo_x, hi_x + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def far_from(centres: np.ndarray, points: list[tuple[float, float]], radius: float) -> np.ndarray:
    """Mask of centres at least ``radius`` px from every (y, x) point."""
    if not points or len(centres) == 0:
        return np.ones(len(centres), dtype=bool)
    p = np.asarray(points, dtype=np.float64)
    d2 = ((centres[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    return (d2 >= radius**2).all(axis=1)


def labelled_image(
    rec: ImageRecord,
    pixels: np.ndarray,
    mpp: float,
    grid: int,
    border: int,
    pid: str | None = None,
    neg_weight: float = 1.0,
    kind: str = "crop",
    repeat: int = 1,
) -> PoolImage:
    """A labelled image: MF positives (each ``repeat`` times), far-enough grid negatives of
    ``kind``, imposters."""
    h, w = pixels.shape[:2]
    mf = [(p.y, p.x) for p in rec.mitoses]
    radius = match_radius_px(mpp)
    c = grid_centres(h, w, grid, border)
    c = c[far_from(c, mf, radius)]
    im = PoolImage(
        pid or rec.id,
        pixels,
        mpp,
        mitoses=[(float(y), float(x)) for y, x in mf],
        neg_weight=neg_weight,
        mitosis_weight=[p.weight for p in rec.mitoses],
        imposters=[(float(p.y), float(p.x)) for p in rec.imposters],
    )
    # positives too close to the border would be mostly mirror (reflect padding): skipped
    im.positives = [
        (int(round(y)), int(round(x)))
        for y, x in mf
        if min(border, (h - 1) // 2) <= y <= max(h - 1 - border, (h - 1) // 2)
        and min(border, (w - 1) // 2) <= x <= max(w - 1 - border, (w - 1) // 2)
    ] * repeat
    im.negatives = [(int(y), int(x), KINDS.index(kind)) for y, x in c]
    im.negatives += [
        (int(round(p.y)), int(round(p.x)), KINDS.index("imposter"))
        for p in rec.imposters
        if 0 <= p.y < h and 0 <= p.x < w
    ]
    return im


def tissue_image(pid: str, pixels: np.ndarray, mpp: float, grid: int, border: int, max_brightness: float) -> PoolImage:
    """An unlabelled tissue tile: grid negatives, background (mean grey > max_brightness) dropped."""
    h, w = pixels.shape[:2]
    c = grid_centres(h, w, grid, border)
    if len(c):
        grey = pixels.mean(axis=2) / 255.0
        r = max(4, int(round(um_to_px(4.0, mpp))) // 2)  # ~4 µm box around the centre
        ii = np.cumsum(np.cumsum(np.pad(grey, ((1, 0), (1, 0))), 0), 1)
        y0, y1 = np.clip(c[:, 0] - r, 0, h), np.clip(c[:, 0] + r + 1, 0, h)
        x0, x1 = np.clip(c[:, 1] - r, 0, w), np.clip(c[:, 1] + r + 1, 0, w)
        s = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]
        mean = s / ((y1 - y0) * (x1 - x0))
        c = c[mean <= max_brightness]
    im = PoolImage(pid, pixels, mpp)
    im.negatives = [(int(y), int(x), KINDS.index("tissue")) for y, x in c]
    return im


def list_images(paths: list[str]) -> list[Path]:
    """Image files named directly or found (recursively) in the given folders, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += images_in(p)
        else:
            out.append(p)
    return out


def read_keep_list(path: str | Path) -> set[tuple[str, int, int]]:
    """(image id, y, x) of the negatives a hard-mining round kept."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {(r["image"], int(r["y"]), int(r["x"])) for r in csv.DictReader(fh)}


def read_hard_anchors(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """image id -> [(y, x)] of the hard-negative anchors a dense mining round wrote."""
    out: dict[str, list[tuple[int, int]]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            out.setdefault(r["image"], []).append((int(r["y"]), int(r["x"])))
    return out


def add_hard_anchors(images: list[PoolImage], anchors: dict[str, list[tuple[int, int]]]) -> int:
    """Add the anchors as negatives of kind "hard" to the images they name (in place); returns the count."""
    kind, n = KINDS.index("hard"), 0
    for im in images:
        for y, x in anchors.get(im.id, []):
            im.negatives.append((y, x, kind))
            n += 1
    return n


def restrict_negatives(images: list[PoolImage], keep: set[tuple[str, int, int]]) -> None:
    """Drop every negative not in ``keep`` (in place)."""
    for im in images:
        im.negatives = [n for n in im.negatives if (im.id, n[0], n[1]) in keep]


def attach_stain_vectors(images: list[PoolImage]) -> np.ndarray:
    """Macenko stain matrix (rows H, E, residual) of every image, for stain-vector jitter; an image
    the unmixing cannot handle (no tissue, one stain) gets the mean of the others. Returns [n,3,3]."""
    mats: list[np.ndarray | None] = []
    for im in images:
        try:
            sv = macenko_vectors(im.pixels)
            mats.append(np.stack([sv.hematoxylin, sv.eosin, sv.residual]).astype(np.float32))
        except StainError:
            mats.append(None)
    ok = [m for m in mats if m is not None]
    mean = np.mean(ok, axis=0) if ok else REFERENCE_STAIN
    return np.stack([m if m is not None else mean for m in mats]) if mats else np.zeros((0, 3, 3), np.float32)
