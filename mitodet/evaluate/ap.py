"""AP as the MIDOG 2022/2025 evaluators report it: COCO mAP@0.5 on boxes around points.

The official code feeds torchmetrics ``MeanAveragePrecision`` (``map_50``, recall
thresholds ``np.arange(0, 1.01, 0.01)``, max detections 1e6) with boxes of
+-0.01125 mm around every predicted and ground-truth point, one class, every
prediction (whatever its name) scored by its probability. torchmetrics (and
pycocotools behind it) are heavy dependencies for a few lines of arithmetic, so
the COCO evaluation steps are written out here and checked against the official
``metrics.json``:

1. per image, detections sorted by score (stable), each matched to the unmatched
   ground-truth box of highest IoU >= 0.5 (COCO ``evaluateImg``);
2. detections of all images pooled in image order and stably sorted by score;
   cumulative TP/FP give precision/recall; precision made monotone from the right;
3. precision read at each recall threshold (``searchsorted`` left, 0 past the
   end) and averaged (COCO ``accumulate``). No ground truth at all gives -1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BOX_HALF_MM = 0.01125  # official: IoU 0.5 <=> 7.5 µm horizontal offset
REC_THRESHOLDS = np.arange(0, 1.01, 0.01)  # exactly the official list (not COCO's linspace)
IOU_THRESHOLD = 0.5


def _boxes(points, half: float) -> np.ndarray:
    """xyxy boxes as float32, like the official ``torch.Tensor`` of them."""
    if len(points) == 0:
        return np.zeros((0, 4), dtype=np.float64)
    xy = np.array([p[:2] for p in points], dtype=np.float64)
    b = np.concatenate([xy - half, xy + half], axis=1).astype(np.float32)
    return b.astype(np.float64)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _match_image(gt, pred, scores, half: float):
    """COCO evaluateImg for one image: (scores sorted, is_tp) of its detections."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    s = np.asarray(scores, dtype=np.float64)[order]
    if len(pred) == 0:
        return s, np.zeros(0, dtype=bool)
    if len(gt) == 0:
        return s, np.zeros(len(pred), dtype=bool)
    ious = _iou(_boxes([pred[i] for i in order], half), _boxes(gt, half))
    taken = np.zeros(len(gt), dtype=bool)
    tp = np.zeros(len(pred), dtype=bool)
    for d in range(len(pred)):
        best, m = min(IOU_THRESHOLD, 1 - 1e-10), -1
        for g in range(len(gt)):
            if taken[g] or ious[d, g] < best:
                continue
            best, m = ious[d, g], g
        if m >= 0:
            taken[m] = True
            tp[d] = True
    return s, tp


def pr_curve(gts: Sequence[Sequence], preds: Sequence[Sequence], half: float = BOX_HALF_MM):
    """Pooled (recall, monotone precision, scores) over images, COCO style.

    ``gts``: per image [(x, y, ...)]; ``preds``: per image [(x, y, probability)].
    """
    all_s, all_tp, n_gt = [], [], 0
    for gt, pred in zip(gts, preds, strict=False):
        n_gt += len(gt)
        s, tp = _match_image(gt, [p[:2] for p in pred], [p[2] for p in pred], half)
        all_s.append(s)
        all_tp.append(tp)
    scores = np.concatenate(all_s) if all_s else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    tp, scores = tp[order], scores[order]
    tps = np.cumsum(tp).astype(np.float64)
    fps = np.cumsum(~tp).astype(np.float64)
    recall = tps / n_gt if n_gt else np.zeros_like(tps)
    precision = tps / (tps + fps + np.spacing(1))
    for i in range(len(precision) - 1, 0, -1):
        if precision[i] > precision[i - 1]:
            precision[i - 1] = precision[i]
    return recall, precision, scores, n_gt


def average_precision(gts: Sequence[Sequence], preds: Sequence[Sequence], half: float = BOX_HALF_MM) -> float:
    """COCO 101-point interpolated AP@0.5 (-1 when there is no ground truth, as COCO)."""
    recall, precision, _, n_gt = pr_curve(gts, preds, half)
    if n_gt == 0:
        return -1.0
    q = np.zeros(len(REC_THRESHOLDS))
    idx = np.searchsorted(recall, REC_THRESHOLDS, side="left")
    ok = idx < len(precision)
    q[ok] = precision[idx[ok]]
    # The official value is a float32 torch tensor turned into a Python float.
    return float(np.float32(q.mean()))
