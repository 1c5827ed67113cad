"""The detector: model + spacing + calibrated threshold -> scored detections in input pixels."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mitodet.errors import MitodetError
from mitodet.infer.dense import DEFAULT_BATCH, DEFAULT_TILE, ProbabilityMap, dense_map, map_shape
from mitodet.infer.onnx import OnnxModel
from mitodet.infer.peaks import local_maxima
from mitodet.io.files import file_sha256
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
BACKENDS = ("auto", "onnx", "torch")

# need(cx, cy) -> bool[len(cy), len(cx)]: which output cells (centres in input-image pixels) to compute
NeedFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def resolve_backend(backend: str, device: str = "cpu") -> str:
    """ "auto": ONNX Runtime on the CPU when it is installed (the fastest path measured here,
    benchmarks/bench_tiles.py), else the folded channels-last torch network."""
    if backend not in BACKENDS:
        raise MitodetError("--backend", f"unknown backend {backend!r}; use auto, onnx or torch")
    if backend != "auto":
        return backend
    if device != "cpu":
        return "torch"
    from mitodet.model.export import import_onnxruntime

    try:
        import_onnxruntime()
    except ImportError:
        return "torch"
    return "onnx"


@dataclass
class Prepared:
    """An image at the model's spacing with the geometry of its map (see :meth:`Detector.prepare`)."""

    image: np.ndarray  # HxWx3 uint8 at the model spacing
    sx: float  # input pixels per model pixel
    sy: float
    pad: tuple[int, int, int, int]
    src_shape: tuple[int, int]  # (height, width) of the input image


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
        batch_size: int = DEFAULT_BATCH,
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
        # what made this detector, for the provenance of its outputs (from_checkpoint adds the file's hash)
        self.identity: dict = {"name": name, "backend": "torch"}
        self.interpolation = interpolation
        self.stats: dict[str, int] = {"network_px": 0}  # input pixels the network ran on, so far
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
        ``backend="onnx"`` runs the exported network with ONNX Runtime (CPU only); ``"auto"``
        picks ONNX Runtime on the CPU when installed, else torch (:func:`resolve_backend`).
        """
        device = check_device(device)
        threads = check_threads(threads)
        backend = resolve_backend(backend, device)
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
        det = cls(model, device=device, **kwargs)
        det.identity = {"name": det.name, "sha256": file_sha256(path), "backend": backend}
        return det

    # -- maps -------------------------------------------------------------------------
    def prepare(self, image: np.ndarray, mpp: float | None = None) -> Prepared:
        """``image`` (HxWx3 uint8 at ``mpp`` µm/px; None = the model's) at the model spacing, and
        the reflection border its map needs."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 image, got {image.dtype} {image.shape}")
        src_shape = (int(image.shape[0]), int(image.shape[1]))
        check_resampled_size(image.shape, mpp or self.mpp, self.mpp)  # a wrong spacing must not exhaust memory
        image, sx, sy = resample(image, mpp or self.mpp, self.mpp, self.interpolation)
        H, W = image.shape[:2]
        p = self.pad
        # reflection border on every side, plus enough at the bottom/right to reach the receptive
        # field; applied per tile by dense_map (no padded copy of the image)
        extra_y = max(0, self.min_side - (H + 2 * p))
        extra_x = max(0, self.min_side - (W + 2 * p))
        pad = (p, p + extra_y + extra_y % 2, p, p + extra_x + extra_x % 2)
        return Prepared(image, sx, sy, pad, src_shape)

    def frame(self, prep: Prepared, prob: np.ndarray | None = None) -> ProbabilityMap:
        """The map geometry of a prepared image, holding ``prob`` (default: uninitialised)."""
        m, p = self.model, prep.pad[0]
        if prob is None:
            prob = np.empty(map_shape(m, prep.image.shape[0], prep.image.shape[1], prep.pad), np.float32)
        # cell centre in the resampled image: offset + stride * j - pad; then back to input pixels
        x0 = (m.offset - p + 0.5) * prep.sx - 0.5
        y0 = (m.offset - p + 0.5) * prep.sy - 0.5
        return ProbabilityMap(prob, x0, y0, m.stride * prep.sx, m.stride * prep.sy, prep.src_shape)

    def need_cells(self, pm: ProbabilityMap, need: NeedFn | None) -> np.ndarray | None:
        """The ``need`` function evaluated on the cells of ``pm`` (None: every cell)."""
        if need is None:
            return None
        h, w = pm.prob.shape
        cx, cy = pm.x0 + pm.step_x * np.arange(w), pm.y0 + pm.step_y * np.arange(h)
        mask = np.asarray(need(cx, cy), bool)
        if mask.shape != (h, w):
            raise ValueError(f"need() gave {mask.shape}, expected {(h, w)}")
        return mask

    def probability_map(
        self,
        image: np.ndarray | Prepared,
        mpp: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        need: NeedFn | None = None,
    ) -> ProbabilityMap:
        """Tiled dense probability map of ``image`` (HxWx3 uint8 at ``mpp`` µm/px; None = model's).

        ``need(cx, cy)``: cells to compute, given their centres in input pixels (e.g. the tissue
        mask); tiles without one are skipped and the other cells are 0."""
        prep = image if isinstance(image, Prepared) else self.prepare(image, mpp)
        pm = self.frame(prep)
        pm.prob = dense_map(
            self.model,
            prep.image,
            self.tile,
            self.batch_size,
            self.device,
            progress,
            pad=prep.pad,
            need=self.need_cells(pm, need),
            stats=self.stats,
        )
        return pm

    # -- detections -------------------------------------------------------------------
    def candidates(
        self,
        image: np.ndarray | Prepared,
        mpp: float | None = None,
        floor: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        need: NeedFn | None = None,
    ) -> list[Detection]:
        """All local maxima with probability > ``floor`` (default ``self.floor``), strongest first,
        inside the input image, labelled with the calibrated threshold."""
        return self.peaks(self.probability_map(image, mpp, progress, need), floor)

    def peaks(self, pm: ProbabilityMap, floor: float | None = None) -> list[Detection]:
        """Local maxima of a :meth:`probability_map` (see :meth:`candidates`)."""
        rows, cols = self.peak_cells(pm, floor)
        cx, cy = pm.to_image(rows, cols)
        return [
            Detection(float(x), float(y), float(pm.prob[i, j]), decide(float(pm.prob[i, j]), self.threshold))
            for i, j, x, y in zip(rows, cols, cx, cy, strict=True)
        ]

    def peak_cells(self, pm: ProbabilityMap, floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the map cells of :meth:`peaks`, strongest first."""
        rect = self.inside(pm)
        r0, r1, c0, c1 = rect
        rc = local_maxima(pm.prob[r0:r1, c0:c1], self.min_cells, self.floor if floor is None else floor)
        return rc[:, 0] + r0, rc[:, 1] + c0

    @property
    def min_cells(self) -> int:
        """The minimum distance of local maxima in map cells."""
        return round(um_to_px(self.min_distance_um, self.mpp) / self.model.stride)

    def inside(self, pm: ProbabilityMap) -> tuple[int, int, int, int]:
        """Rows r0:r1 and columns c0:c1 of the cells centred inside the input image.

        Cells centred in the reflected border are dropped BEFORE the peak search: their
        mirror images of a peak near the edge would otherwise suppress the real one. The
        inside cells form a rectangle, so the search runs on a view of it (no masked copy)."""
        H, W = pm.shape
        cx = pm.x0 + pm.step_x * np.arange(pm.prob.shape[1])
        cy = pm.y0 + pm.step_y * np.arange(pm.prob.shape[0])
        r0, r1 = np.searchsorted(cy, -0.5), np.searchsorted(cy, H - 0.5, side="right")
        c0, c1 = np.searchsorted(cx, -0.5), np.searchsorted(cx, W - 0.5, side="right")
        return int(r0), int(r1), int(c0), int(c1)

    def detect(
        self,
        image: np.ndarray | Prepared,
        mpp: float | None = None,
        threshold: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        need: NeedFn | None = None,
    ) -> list[Detection]:
        """Candidates labelled "mitotic figure" at probability >= ``threshold`` (None: calibrated)."""
        threshold = check_threshold(threshold)
        return self.label(self.candidates(image, mpp, self.floor_for(threshold), progress, need), threshold)

    def floor_for(self, threshold: float | None) -> float:
        """The candidate floor of :meth:`detect` at ``threshold``."""
        return min(self.floor, self.threshold if threshold is None else float(threshold))

    def label(self, dets: list[Detection], threshold: float | None) -> list[Detection]:
        """``dets`` labelled at ``threshold`` (None: the calibrated one)."""
        t = self.threshold if threshold is None else float(threshold)
        return [Detection(d.x, d.y, d.probability, decide(d.probability, t)) for d in dets]
