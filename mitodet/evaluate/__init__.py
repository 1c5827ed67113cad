"""Scoring detections: the official MIDOG rules (mm) and the same rules in pixels."""

import sys
import types

from mitodet.evaluate.ap import average_precision
from mitodet.evaluate.froc import froc_auc, froc_curve
from mitodet.evaluate.matching import DetectionScore, best_threshold, match_points, score, score_detection
from mitodet.evaluate.midog import RADIUS_MM, aggregate, evaluate, load_ground_truth, load_predictions

__all__ = [
    "DetectionScore",
    "RADIUS_MM",
    "aggregate",
    "average_precision",
    "best_threshold",
    "evaluate",
    "froc_auc",
    "froc_curve",
    "load_ground_truth",
    "load_predictions",
    "match_points",
    "score",
    "score_detection",
]


class _CallableStage(types.ModuleType):
    """``mitodet.evaluate`` is both this stage and the API's scoring call: once the package is
    imported it is the attribute ``mitodet.evaluate``, so calling it scores, as
    :func:`mitodet.api.evaluate` does (the official MIDOG rules)."""

    def __call__(self, truth, predictions, *, mpp=None, strict=False) -> dict:
        return evaluate(truth, predictions, strict=strict, mpp=mpp)


sys.modules[__name__].__class__ = _CallableStage
