"""Dense detection (tiled probability maps, local maxima), calibration, ensemble and outputs."""

from mitodet.infer.dense import ProbabilityMap, dense_map
from mitodet.infer.detector import Detector
from mitodet.infer.ensemble import detect_image, ensemble
from mitodet.schema import Detection

__all__ = ["Detection", "Detector", "ProbabilityMap", "dense_map", "detect_image", "ensemble"]
