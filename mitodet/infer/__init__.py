"""Dense detection (tiled probability maps, local maxima), calibration, ensemble and outputs.

Its names load on first use, so a torch-free module of this package (the summary, the report)
can be imported without loading torch (``mitodet --version`` and ``-h`` stay fast). The
agreement function is ``mitodet.infer.ensemble.ensemble``: ``mitodet.infer.ensemble`` is its module."""

from __future__ import annotations

import importlib

_WHERE = {
    "ProbabilityMap": "mitodet.infer.dense",
    "dense_map": "mitodet.infer.dense",
    "Detector": "mitodet.infer.detector",
    "detect_image": "mitodet.infer.ensemble",
    "Detection": "mitodet.schema",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'mitodet.infer' has no attribute {name!r}")
