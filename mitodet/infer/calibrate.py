"""Decision threshold = the one maximising pooled F1 on the validation split (the paper)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mitodet.evaluate.matching import best_threshold
from mitodet.infer.detector import Detector
from mitodet.schema import MATCH_RADIUS_UM

CALIBRATION_FLOOR = 0.01  # candidates below this never win the F1 search


@dataclass
class _Item:
    id: str
    image: np.ndarray
    mpp: float
    points: list


def candidates_um(
    detector: Detector, items: Iterable, floor: float, on_item: Callable[[int, int, str], None] | None = None
) -> tuple[dict, dict]:
    """The one candidates -> µm loop of calibration and training validation: per item (``.id``,
    ``.image``, ``.mpp``, ``.points`` in pixels; read one at a time) its truth ``[(x, y)]`` and
    candidates ``[(x, y, p)]`` above ``floor`` in µm, so that images of different spacings pool
    (``on_item(done, total, id)`` follows it; total 0 where ``items`` has no length)."""
    truth, pred = {}, {}
    total = len(items) if isinstance(items, Sequence) else 0
    for i, it in enumerate(items, 1):
        cands = detector.candidates(it.image, it.mpp, floor=floor)
        truth[it.id] = [
            (p.x * it.mpp, p.y * it.mpp) if hasattr(p, "x") else (p[0] * it.mpp, p[1] * it.mpp) for p in it.points
        ]
        pred[it.id] = [(d.x * it.mpp, d.y * it.mpp, d.probability) for d in cands]
        if on_item is not None:
            on_item(i, total, str(it.id))
    return truth, pred


def calibrate(detector: Detector, images: Iterable, on_image: Callable[[str], None] | None = None) -> dict:
    """Search the F1-optimal threshold over ``images``.

    ``images``: objects with ``.id``, ``.image`` (HxWx3 uint8), ``.mpp`` and ``.points``
    (mitotic figures, pixels) or plain ``(id, image, mpp, points)`` tuples. Matching is
    done in µm (7.5 µm radius) so images of different spacings pool correctly. Returns
    ``{"threshold", "f1", "precision", "recall", "curve", "n_images", "n_mitoses", "n_candidates"}``.
    """
    items = (_Item(*item) if isinstance(item, tuple) else item for item in images)
    progress = (lambda done, total, key: on_image(key)) if on_image else None
    truth, pred = candidates_um(detector, items, CALIBRATION_FLOOR, progress)
    best = best_threshold(truth, pred, MATCH_RADIUS_UM)
    best.update(n_images=len(truth), n_mitoses=sum(map(len, truth.values())), n_candidates=sum(map(len, pred.values())))
    return best
