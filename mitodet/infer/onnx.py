"""ONNX Runtime backend for CPU inference (the fastest path measured on CPUs, and the default of
``mitodet detect``); a drop-in for the torch module in :func:`mitodet.infer.dense.dense_map`.

The export takes longer than a small image's detection, so exported graphs are kept in a cache
folder (``$MITODET_CACHE``, else ``~/.cache/mitodet``), keyed by a hash of the weights, the
configuration and the torch version; without a writable cache the graph is exported every time.
A cached graph is trusted only after it gives the torch model's own logits on a fixed probe
input: a graph swapped, edited or made for other weights is exported again, so whoever can
write the cache cannot choose the results.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mitodet.errors import MitodetError
from mitodet.model.export import EXPORT_EXTRA, export_onnx, import_onnxruntime


class OnnxModel(nn.Module):
    """The network exported by ``mitodet.model.export.export_onnx`` and run by ONNX Runtime.

    Keeps the geometry attributes of the torch model (``receptive_field``, ``stride``,
    ``offset``, ``output_size``) and takes/returns float32 CPU tensors [B,3,H,W] -> [B,2,h,w]."""

    receptive_field: int
    stride: int
    offset: float

    def __init__(self, model: Any, threads: int | None = None):
        super().__init__()
        try:
            ort = import_onnxruntime()
        except ImportError:
            raise MitodetError(
                "onnxruntime",
                f"not installed; the onnx backend needs the extra ({EXPORT_EXTRA}), or use --backend torch",
            ) from None
        ort.set_default_logger_severity(3)  # errors only: no coloured telemetry warning (a read-only HOME)
        self.receptive_field, self.stride, self.offset = model.receptive_field, model.stride, model.offset
        self._output_size = model.output_size
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        # idle threads sleep instead of spinning: faster on a shared machine (measured), and Ray
        # tasks side by side on one node do not burn each other's cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = model.cpu().float().eval()
        cached = _cache_path(model)
        if cached is not None and cached.is_file():
            with contextlib.suppress(Exception):  # a damaged or foreign cache entry is exported again below
                session = ort.InferenceSession(str(cached), opts, providers=["CPUExecutionProvider"])
                if agrees(session, model):
                    self.session = session
                    return
        if cached is not None:
            with contextlib.suppress(OSError, MitodetError):  # a cache that cannot be written: export below
                export_onnx(model, cached)
                self.session = ort.InferenceSession(str(cached), opts, providers=["CPUExecutionProvider"])
                return
        with tempfile.TemporaryDirectory() as tmp:  # the session keeps the graph in memory
            path = export_onnx(model, Path(tmp) / "model.onnx")
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def output_size(self, n: int) -> int:
        return self._output_size(n)

    def run_numpy(self, x: np.ndarray) -> np.ndarray:
        """Logits [B,2,h,w] of a C-contiguous float32 batch [B,3,H,W]."""
        return self.session.run(["logits"], {"image": x})[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.session.run(["logits"], {"image": x.detach().cpu().float().contiguous().numpy()})[0]
        return torch.from_numpy(np.ascontiguousarray(logits))


def agrees(session: Any, model: Any, atol: float = 1e-3) -> bool:
    """Whether ``session`` gives ``model``'s logits on a fixed random probe (one small tile)."""
    n = int(model.receptive_field) + 4 * int(model.stride)
    x = torch.rand(1, 3, n, n, generator=torch.Generator().manual_seed(12345))
    with torch.no_grad():
        ref = model(x).numpy()
    got = session.run(["logits"], {"image": x.numpy()})[0]
    return got.shape == ref.shape and bool(np.allclose(got, ref, atol=atol, rtol=1e-3))


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$MITODET_CACHE``, else ``$XDG_CACHE_HOME/mitodet``."""
    env = os.environ.get("MITODET_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mitodet"


def _cache_path(model: Any) -> Path | None:
    """The cache file of ``model``'s graph, or None when the cache folder cannot be made."""
    h = hashlib.sha256(f"{torch.__version__}|{getattr(model, 'config', None)}|{type(model).__name__}".encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    folder = cache_dir() / "onnx"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder / f"{h.hexdigest()[:32]}.onnx"
