"""Scoring detections: the official MIDOG rules (mm) and the same rules in pixels."""

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
