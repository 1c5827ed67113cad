"""Dense detection (tiled probability maps, local maxima), calibration, ensemble and outputs."""

from mitodet.infer.dense import ProbabilityMap, dense_map
from mitodet.infer.detector import Detection, Detector, detect_image
from mitodet.infer.ensemble import ensemble

__all__ = ["Detection", "Detector", "ProbabilityMap", "dense_map", "detect_image", "ensemble"]
