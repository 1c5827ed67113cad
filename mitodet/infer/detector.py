"""The detector: model + spacing + calibrated threshold -> scored detections in input pixels."""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch

from mitodet.errors import MitodetError
from mitodet.infer.dense import DEFAULT_TILE, ProbabilityMap, dense_map
from mitodet.infer.onnx import OnnxModel
from mitodet.infer.peaks import local_maxima
from mitodet.io.image import check_mpp
from mitodet.model import load_checkpoint
from mitodet.model.export import fold as fold_model
from mitodet.model.protocol import DenseNet
from mitodet.resample import DEFAULT_INTERPOLATION, FILTERS, check_resampled_size, resample
from mitodet.schema import DEFAULT_MPP, MATCH_RADIUS_UM, Detection, decide, um_to_px
from mitodet.settings import (  # noqa: F401  (re-exported: the checks of the detector's settings)
    MAX_BATCH_SIZE,
    MAX_THREADS,
    MAX_TILE,
    MIN_TILE,
    check_batch_size,
    check_device,
    check_threads,
    check_threshold,
    check_tile,
)

DEFAULT_THRESHOLD = 0.5  # used only when a checkpoint was never calibrated


class Detector:
    """Dense detector around one trained network (see module docs of :mod:`mitodet.infer.dense`).

    ``mpp``: the model's pixel spacing (µm/px); ``threshold``: the calibrated decision
    threshold; ``min_distance_um``: minimum spacing of local maxima (default the matching radius).
    """

    def __init__(
        self,
        model: DenseNet,
        mpp: float = DEFAULT_MPP,
        threshold: float | None = None,
        device: str = "cpu",
        tile: int = DEFAULT_TILE,
        batch_size: int = 4,
        min_distance_um: float = MATCH_RADIUS_UM,
        floor: float = 0.05,
        name: str = "model",
        interpolation: str = DEFAULT_INTERPOLATION,
    ):
        self.device = torch.device(check_device(device) if isinstance(device, str) else device)
        self.model = model.to(self.device).eval()
        model_mpp = check_mpp(mpp, "model spacing")
        if model_mpp is None:
            raise MitodetError("model spacing", "missing (give the model's µm/px)")
        self.mpp: float = model_mpp
        checked = check_threshold(threshold, "threshold")
        self.threshold = DEFAULT_THRESHOLD if checked is None else checked
        self.calibrated = threshold is not None
        self.tile, self.batch_size = check_tile(tile, "tile"), check_batch_size(batch_size, "batch size")
        if interpolation not in FILTERS:
            raise MitodetError("interpolation", f"unknown interpolation {interpolation!r}; use {', '.join(FILTERS)}")
        self.min_distance_um, self.floor = min_distance_um, floor
        self.name = name
        self.interpolation = interpolation
        rf = model.receptive_field
        # Reflection border so cells exist up to the image edge; even so the pool grid is kept.
        self.pad = 2 * math.ceil(model.offset / 2)
        self.min_side = rf + (rf % 2)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str = "cpu",
        threads: int | None = None,
        fold: bool = True,
        backend: str = "torch",
        **kwargs,
    ) -> Detector:
        """Load a ``save_checkpoint`` file; its meta supplies ``mpp`` and ``threshold``.

        ``fold`` merges batch norms into the convolutions (same outputs, faster);
        ``backend="onnx"`` runs the exported network with ONNX Runtime (CPU only).
        """
        if backend not in ("torch", "onnx"):
            raise MitodetError("--backend", f"unknown backend {backend!r}; use torch or onnx")
        device = check_device(device)
        threads = check_threads(threads)
        if backend == "onnx" and device != "cpu":
            raise MitodetError(device, "the onnx backend runs on the CPU; use --backend torch for CUDA")
        if "tile" in kwargs:
            check_tile(kwargs["tile"])
        if "batch_size" in kwargs:
            check_batch_size(kwargs["batch_size"])
        if threads:
            torch.set_num_threads(threads)
        net, meta = load_checkpoint(path)  # meta["mpp"], meta["threshold"], ... are checked there
        if fold:
            net = fold_model(net)
        model: DenseNet = OnnxModel(net, threads) if backend == "onnx" else net
        kwargs.setdefault("mpp", meta.get("mpp", DEFAULT_MPP))
        kwargs.setdefault("threshold", meta.get("threshold"))
        kwargs.setdefault("interpolation", meta.get("interpolation", DEFAULT_INTERPOLATION))
        kwargs.setdefault("name", os.path.basename(str(path)))
        return cls(model, device=device, **kwargs)

    # -- maps -------------------------------------------------------------------------
    def probability_map(
        self, image: np.ndarray, mpp: float | None = None, progress: Callable[[int, int], None] | None = None
    ) -> ProbabilityMap:
        """Tiled dense probability map of ``image`` (HxWx3 uint8 at ``mpp`` µm/px; None = model's)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 image, got {image.dtype} {image.shape}")
        src = image
        check_resampled_size(image.shape, mpp or self.mpp, self.mpp)  # a wrong spacing must not exhaust memory
        image, sx, sy = resample(image, mpp or self.mpp, self.mpp, self.interpolation)
        H, W = image.shape[:2]
        p = self.pad
        # reflection border on every side, plus enough at the bottom/right to reach the receptive
        # field; applied per tile by dense_map (no padded copy of the image)
        extra_y = max(0, self.min_side - (H + 2 * p))
        extra_x = max(0, self.min_side - (W + 2 * p))
        pad = (p, p + extra_y + extra_y % 2, p, p + extra_x + extra_x % 2)
        prob = dense_map(self.model, image, self.tile, self.batch_size, self.device, progress, pad=pad)
        m = self.model
        # cell centre in the resampled image: offset + stride * j - pad; then back to input pixels
        x0 = (m.offset - p + 0.5) * sx - 0.5
        y0 = (m.offset - p + 0.5) * sy - 0.5
        return ProbabilityMap(prob, x0, y0, m.stride * sx, m.stride * sy, src.shape[:2])

    # -- detections -------------------------------------------------------------------
    def candidates(
        self,
        image: np.ndarray,
        mpp: float | None = None,
        floor: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Detection]:
        """All local maxima with probability > ``floor`` (default ``self.floor``), strongest first,
        inside the input image, labelled with the calibrated threshold."""
        return self.peaks(self.probability_map(image, mpp, progress), floor)

    def peaks(self, pm: ProbabilityMap, floor: float | None = None) -> list[Detection]:
        """Local maxima of a :meth:`probability_map` (see :meth:`candidates`)."""
        step_model_px = self.model.stride
        min_cells = round(um_to_px(self.min_distance_um, self.mpp) / step_model_px)
        H, W = pm.shape
        # Cells centred in the reflected border are dropped BEFORE the peak search: their
        # mirror images of a peak near the edge would otherwise suppress the real one. The
        # inside cells form a rectangle, so the search runs on a view of it (no masked copy).
        cx = pm.x0 + pm.step_x * np.arange(pm.prob.shape[1])
        cy = pm.y0 + pm.step_y * np.arange(pm.prob.shape[0])
        r0, r1 = np.searchsorted(cy, -0.5), np.searchsorted(cy, H - 0.5, side="right")
        c0, c1 = np.searchsorted(cx, -0.5), np.searchsorted(cx, W - 0.5, side="right")
        prob = pm.prob[r0:r1, c0:c1]
        rc = local_maxima(prob, min_cells, self.floor if floor is None else floor)
        cx, cy = cx[c0:c1], cy[r0:r1]
        out = []
        for i, j in rc:
            pr = float(prob[i, j])
            out.append(Detection(float(cx[j]), float(cy[i]), pr, decide(pr, self.threshold)))
        return out

    def detect(
        self,
        image: np.ndarray,
        mpp: float | None = None,
        threshold: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Detection]:
        """Candidates labelled "mitotic figure" at probability >= ``threshold`` (None: calibrated)."""
        checked = check_threshold(threshold)
        t = self.threshold if checked is None else checked
        return [
            Detection(d.x, d.y, d.probability, decide(d.probability, t))
            for d in self.candidates(image, mpp, min(self.floor, t), progress)
        ]
