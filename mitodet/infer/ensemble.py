"""The paper's two-model agreement ensemble (CA-RGB and CA-OD models), and detection
with one model or the pair (:func:`detect_image`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from mitodet.errors import MitodetError
from mitodet.infer.detector import Detector
from mitodet.schema import MITOTIC_FIGURE, NON_MITOTIC, Detection, match_radius_px


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
    if dets_a and dets_b:
        ta = cKDTree(np.array([(d.x, d.y) for d in dets_a]))
        tb = cKDTree(np.array([(d.x, d.y) for d in dets_b]))
        pairs = ta.sparse_distance_matrix(tb, radius_px, output_type="ndarray")
        for k in np.lexsort((pairs["j"], pairs["i"], pairs["v"])):
            i, j = int(pairs["i"][k]), int(pairs["j"][k])
            if i in used_a or j in used_b:
                continue
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


def detect_image(
    detectors: Sequence[Detector],
    image: np.ndarray,
    mpp: float | None = None,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Detection]:
    """Detections of one detector, or the agreement ensemble of two (radius 7.5 µm)."""
    if len(detectors) not in (1, 2):
        raise MitodetError(None, f"give one model, or two for the ensemble (got {len(detectors)})")
    dets = [d.detect(image, mpp, threshold, progress) for d in detectors]
    if len(dets) == 1:
        return dets[0]
    return ensemble(dets[0], dets[1], match_radius_px(mpp or detectors[0].mpp))
