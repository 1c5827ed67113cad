"""The paper's two-model agreement ensemble (CA-RGB and CA-OD models), and detection
with one model or the pair (:func:`detect_image`).

The ensemble keeps a mitotic figure only where both models call one, so the second model
only needs to look near the first model's candidates: :func:`cascade` runs it in windows
around them and gives the full ensemble's answer (see there for what exactly is equal).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from mitodet.errors import MitodetError
from mitodet.infer.dense import run_boxes, tile_starts
from mitodet.infer.detector import Detector, NeedFn, Prepared
from mitodet.schema import MITOTIC_FIGURE, NON_MITOTIC, Detection, match_radius_px


def agreement_pairs(
    dets_a: Sequence[Detection], dets_b: Sequence[Detection], radius_px: float
) -> list[tuple[int, int]]:
    """Index pairs (i, j) of the ensemble: one-to-one, closest first (ties by index), within
    ``radius_px``, whatever the labels (a pair is a mitotic figure when both are one)."""
    out: list[tuple[int, int]] = []
    if not dets_a or not dets_b:
        return out
    used_a, used_b = set(), set()
    ta = cKDTree(np.array([(d.x, d.y) for d in dets_a]))
    tb = cKDTree(np.array([(d.x, d.y) for d in dets_b]))
    pairs = ta.sparse_distance_matrix(tb, radius_px, output_type="ndarray")
    for k in np.lexsort((pairs["j"], pairs["i"], pairs["v"])):
        i, j = int(pairs["i"][k]), int(pairs["j"][k])
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j))
    return out


def ensemble(dets_a: list[Detection], dets_b: list[Detection], radius_px: float) -> list[Detection]:
    """Agreement of two detection sets.

    Pairs are formed one-to-one, closest first, within ``radius_px``; a pair is placed at
    the midpoint with the mean probability and is a "mitotic figure" only when BOTH
    models called it one (the paper keeps detections both models agree on). An unpaired
    candidate is kept as "non-mitotic figure" with half its probability (the other model's
    vote counts as 0), so AP/FROC still see it. Sorted by probability, strongest first.
    """
    out: list[Detection] = []
    used_a, used_b = set(), set()
    for i, j in agreement_pairs(dets_a, dets_b, radius_px):
        used_a.add(i)
        used_b.add(j)
        a, b = dets_a[i], dets_b[j]
        agree = a.label == MITOTIC_FIGURE and b.label == MITOTIC_FIGURE
        out.append(
            Detection(
                (a.x + b.x) / 2,
                (a.y + b.y) / 2,
                (a.probability + b.probability) / 2,
                MITOTIC_FIGURE if agree else NON_MITOTIC,
            )
        )
    for dets, used in ((dets_a, used_a), (dets_b, used_b)):
        out += [Detection(d.x, d.y, d.probability / 2, NON_MITOTIC) for k, d in enumerate(dets) if k not in used]
    out.sort(key=lambda d: -d.probability)
    return out


MIN_BOX = 48  # cells: the smallest box run (tiny inputs may take other, differently rounding kernels)


def _widen(a: int, b: int, size: int, n: int) -> tuple[int, int]:
    """[a, b) grown to at least ``size`` (within [0, n))."""
    if b - a >= size or n <= size:
        return (0, n) if n <= size else (a, b)
    a = max(0, min(a - (size - (b - a)) // 2, n - size))
    return a, a + size


class _Windows:
    """The second model's map, computed only in square windows (cells outside: -1)."""

    def __init__(self, det: Detector, prep: Prepared, need: NeedFn | None, radius_px: float):
        self.det, self.prep = det, prep
        self.pm = det.frame(prep)
        self.pm.prob.fill(-1)
        h, w = self.pm.prob.shape
        self.computed = np.zeros((h, w), bool)
        self.need = det.need_cells(self.pm, need)
        # a window holds every cell within the pairing radius of its centre, plus twice the
        # peak search's reach around those (its max filter, and a chain of equal maxima)
        reach = math.ceil(radius_px / min(self.pm.step_x, self.pm.step_y)) + 2
        self.half = reach + 2 * det.min_cells
        self.size = (min(2 * self.half + 1, h), min(2 * self.half + 1, w))
        self.inside = det.inside(self.pm)
        self.spent = 0  # input pixels run so far

    def add(self, xs: np.ndarray, ys: np.ndarray) -> None:
        """Compute the windows centred on input-image points (xs, ys): each window's not yet computed
        cells by their bounding box, or, when that would cost more (many close windows), the
        detector's tiles that hold such cells. Either way a cell gets the value of the full map."""
        h, w = self.computed.shape
        sh, sw = self.size
        ci, cj = self.pm.to_cell(xs, ys)
        todo = np.zeros((h, w), bool)
        boxes = []
        for i, j in zip(np.rint(ci).astype(int), np.rint(cj).astype(int), strict=True):
            i0, j0 = int(np.clip(i - self.half, 0, h - sh)), int(np.clip(j - self.half, 0, w - sw))
            todo[i0 : i0 + sh, j0 : j0 + sw] = True
            boxes.append((i0, j0))
        todo &= ~self.computed
        self.computed |= todo
        if self.need is not None:
            self.pm.prob[todo & ~self.need] = 0
            todo &= self.need
        if not todo.any():
            return
        det, m = self.det, self.det.model
        rf, stride = m.receptive_field, m.stride
        # the bounding boxes of each window's part of `todo`, at least MIN_BOX cells a side
        own = []
        for i0, j0 in boxes:
            part = todo[i0 : i0 + sh, j0 : j0 + sw]
            rows, cols = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
            if len(rows):
                a0, a1 = _widen(i0 + int(rows[0]), i0 + int(rows[-1]) + 1, MIN_BOX, h)
                b0, b1 = _widen(j0 + int(cols[0]), j0 + int(cols[-1]) + 1, MIN_BOX, w)
                own.append((a0, b0, a1 - a0, b1 - b0))
        cost_own = sum((rf + stride * (bh - 1)) * (rf + stride * (bw - 1)) for _, _, bh, bw in own)
        t = max(1, m.output_size(max(det.tile, rf)))
        rows_t, th = tile_starts(h, t)
        cols_t, tw = tile_starts(w, t)
        tiles = [(i, j) for i in rows_t for j in cols_t if todo[i : i + th, j : j + tw].any()]
        tile_px = (rf + stride * (th - 1)) * (rf + stride * (tw - 1))
        cost_tiles = len(tiles) * tile_px
        left = ~self.computed | todo
        if self.need is not None:
            left &= self.need
        everything = [(i, j) for i in rows_t for j in cols_t if left[i : i + th, j : j + tw].any()]
        if min(cost_own, cost_tiles) + self.spent >= len(everything) * tile_px:
            # windows would cost more than the rest of the map: compute all of it (nothing is left after)
            todo, tiles, cost_own = left, everything, cost_tiles + 1
            self.computed[:] = True
        scratch = np.empty((h, w), np.float32)
        args = (det.model, self.prep.image)
        if cost_tiles < cost_own:
            n = run_boxes(*args, tiles, (th, tw), scratch, det.batch_size, det.device, self.prep.pad)
        else:
            n = sum(run_boxes(*args, [(a, b)], (bh, bw), scratch, 1, det.device, self.prep.pad) for a, b, bh, bw in own)
        det.stats["network_px"] += n
        self.spent += n
        self.pm.prob[todo] = scratch[todo]

    def detections(self, threshold: float | None) -> list[Detection]:
        """The second model's candidates whose peak test saw only computed cells: exactly those
        of its full map there (same order, strongest first)."""
        det, (r0, r1, c0, c1) = self.det, self.inside
        rows, cols = det.peak_cells(self.pm, det.floor_for(threshold))
        m = 2 * det.min_cells
        keep = [
            k
            for k, (i, j) in enumerate(zip(rows, cols, strict=True))
            if self.computed[max(i - m, r0) : min(i + m + 1, r1), max(j - m, c0) : min(j + m + 1, c1)].all()
        ]
        rows, cols = rows[keep], cols[keep]
        xs, ys = self.pm.to_image(rows, cols)
        p = self.pm.prob[rows, cols]
        return det.label(
            [Detection(float(x), float(y), float(v)) for x, y, v in zip(xs, ys, p, strict=True)], threshold
        )


def _same_input(a: Detector, b: Detector) -> bool:
    """Whether both detectors feed their networks the same prepared image."""
    return (a.mpp, a.interpolation, a.pad, a.min_side) == (b.mpp, b.interpolation, b.pad, b.min_side)


def cascade(
    first: Detector,
    second: Detector,
    image: np.ndarray,
    mpp: float | None = None,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    need: NeedFn | None = None,
    floor: float | None = None,
) -> list[Detection]:
    """The agreement ensemble of ``first`` and ``second``, running ``second`` only in windows
    around ``first``'s candidates with probability >= ``floor`` (default, and at most: the
    threshold ``first`` applies, so every mitotic figure of the ensemble has one).

    Exactly equal to ``ensemble(first.detect(...), second.detect(...))`` in this sense: every
    output is an output of the full ensemble, bit for bit, in the same order; and every output
    of the full ensemble that involves a seed candidate (hence every mitotic figure) is here.
    Why: map cells do not depend on the window they are computed in (:mod:`mitodet.infer.dense`);
    a window covers the pairing radius plus the peak test's reach, so the second model's
    candidates near a seed are exact; and seeds are added until no candidate of ``first`` lies
    within the radius of a found candidate of ``second`` without being one, so each connected
    group of the closest-first pairing is complete and pairs exactly as in the full ensemble.
    What is left out: pairs and singles of ``first``'s candidates below ``floor`` (listed by the
    full ensemble as non-mitotic) and candidates only ``second`` has far from any seed."""
    t_first = first.threshold if threshold is None else float(threshold)
    floor = t_first if floor is None else min(float(floor), t_first)
    prep = first.prepare(image, mpp)
    prep_b = prep if _same_input(first, second) else second.prepare(image, mpp)
    radius = match_radius_px(mpp or first.mpp)
    pm = first.probability_map(prep, progress=progress, need=need)
    dets_a = first.label(first.peaks(pm, first.floor_for(threshold)), threshold)
    del pm
    windows = _Windows(second, prep_b, need, radius)
    seeds = {k for k, d in enumerate(dets_a) if d.probability >= floor}
    pending = sorted(seeds)
    tree_a = cKDTree(np.array([(d.x, d.y) for d in dets_a])) if dets_a else None
    dets_b: list[Detection] = []
    while pending:
        windows.add(np.array([dets_a[k].x for k in pending]), np.array([dets_a[k].y for k in pending]))
        dets_b = windows.detections(threshold)
        near: set[int] = set()
        if dets_b and tree_a is not None:
            for hits in tree_a.query_ball_point(np.array([(d.x, d.y) for d in dets_b]), radius * (1 + 1e-9) + 1e-9):
                near.update(hits)
        pending = sorted(near - seeds)
        seeds |= near
    return ensemble([dets_a[k] for k in sorted(seeds)], dets_b, radius)


def detect_image(
    detectors: Sequence[Detector],
    image: np.ndarray,
    mpp: float | None = None,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    need: NeedFn | None = None,
    full: bool = False,
) -> list[Detection]:
    """Detections of one detector, or the agreement ensemble of two (radius 7.5 µm): by the
    :func:`cascade` unless ``full`` (both models everywhere; all candidates of both listed)."""
    if len(detectors) not in (1, 2):
        raise MitodetError(None, f"give one model, or two for the ensemble (got {len(detectors)})")
    if len(detectors) == 2 and not full:
        return cascade(detectors[0], detectors[1], image, mpp, threshold, progress, need)
    if len(detectors) == 1:
        return detectors[0].detect(image, mpp, threshold, progress, need)
    prep = detectors[0].prepare(image, mpp)
    dets = [d.detect(prep if _same_input(*detectors) else image, mpp, threshold, progress, need) for d in detectors]
    return ensemble(dets[0], dets[1], match_radius_px(mpp or detectors[0].mpp))
