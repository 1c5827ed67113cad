"""Decision threshold = the one maximising pooled F1 on the validation split (the paper)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mitodet.evaluate.matching import best_threshold
from mitodet.infer.detector import Detector
from mitodet.schema import MATCH_RADIUS_UM

CALIBRATION_FLOOR = 0.01  # candidates below this never win the F1 search


def calibrate(detector: Detector, images: Iterable, on_image: Callable[[str], None] | None = None) -> dict:
    """Search the F1-optimal threshold over ``images``.

    ``images``: objects with ``.id``, ``.image`` (HxWx3 uint8), ``.mpp`` and ``.points``
    (mitotic figures, pixels) or plain ``(id, image, mpp, points)`` tuples. Matching is
    done in µm (7.5 µm radius) so images of different spacings pool correctly. Returns
    ``{"threshold", "f1", "precision", "recall", "curve", "n_images", "n_mitoses", "n_candidates"}``.
    """
    truth, pred = {}, {}
    for item in images:
        if isinstance(item, tuple):
            key, image, mpp, points = item
        else:
            key, image, mpp, points = item.id, item.image, item.mpp, item.points
        cands = detector.candidates(image, mpp, floor=CALIBRATION_FLOOR)
        truth[key] = [(p.x * mpp, p.y * mpp) if hasattr(p, "x") else (p[0] * mpp, p[1] * mpp) for p in points]
        pred[key] = [(d.x * mpp, d.y * mpp, d.probability) for d in cands]
        if on_image:
            on_image(str(key))
    best = best_threshold(truth, pred, MATCH_RADIUS_UM)
    best.update(n_images=len(truth), n_mitoses=sum(map(len, truth.values())), n_candidates=sum(map(len, pred.values())))
    return best
