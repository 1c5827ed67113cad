"""Numerical checks of a network's promises, usable from tests and from ``mitodet model check``
(as escnn's ``check_equivariance``): 90° rotation equivariance of the output map, dense ==
patch-wise application, and folded / ONNX copies equal to the original.

Each check returns ``(what was checked, max |difference| of the logits)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mitodet.errors import MitodetError
from mitodet.model.export import EXPORT_EXTRA, export_onnx, fold, import_onnxruntime
from mitodet.model.resnet import ResNet

TOLERANCE = 1e-4  # relative to max(1, max |logit|)


def valid_crop(model: ResNet, x: torch.Tensor) -> torch.Tensor:
    """``x`` [B,3,H,W] cut to the largest size that gives exactly equivariant output (even-aligned)."""
    h, w = (n - (n - model.receptive_field) % 2 for n in x.shape[-2:])
    if h < model.receptive_field or w < model.receptive_field:
        raise ValueError(f"input smaller than the receptive field ({model.receptive_field} px)")
    return x[..., :h, :w].contiguous()


@torch.no_grad()
def check_rotations(model: ResNet, x: torch.Tensor) -> list[tuple[str, float]]:
    """Rotating the input by k quarter turns rotates the output map by k quarter turns."""
    y = model(x)
    return [
        (
            f"rotation {90 * k}°: output map rotates",
            float((model(torch.rot90(x, k, (-2, -1))) - torch.rot90(y, k, (-2, -1))).abs().max()),
        )
        for k in (1, 2, 3)
    ]


@torch.no_grad()
def check_dense_vs_patch(model: ResNet, x: torch.Tensor, n: int = 8, seed: int = 0) -> tuple[str, float]:
    """``n`` random output cells of the dense map equal the network applied to their rf x rf patch."""
    y = model(x)
    rf, s = model.receptive_field, model.stride
    g = torch.Generator().manual_seed(seed)
    cells = [
        (int(torch.randint(0, y.shape[2], (1,), generator=g)), int(torch.randint(0, y.shape[3], (1,), generator=g)))
        for _ in range(n)
    ]
    patches = torch.cat([x[..., s * i : s * i + rf, s * j : s * j + rf] for i, j in cells])
    pw = model(patches)[:, :, 0, 0]
    return f"dense == patch-wise ({n} cells)", float((pw - torch.stack([y[0, :, i, j] for i, j in cells])).abs().max())


@torch.no_grad()
def check_fold(model: ResNet, x: torch.Tensor) -> tuple[str, float]:
    """The folded copy (plain convolutions, batch norm merged) gives the same logits."""
    return "folded == original", float((fold(model)(x) - model(x)).abs().max())


@torch.no_grad()
def check_onnx(model: ResNet, path: str | os.PathLike, x: torch.Tensor) -> tuple[str, float]:
    """The ONNX file at ``path``, run by ONNX Runtime, gives the same logits as ``model``."""
    try:
        ort = import_onnxruntime()  # optional: the [export] extra
    except ImportError:
        raise MitodetError(
            "onnxruntime", f"not installed; checking the ONNX file needs the extra: {EXPORT_EXTRA}"
        ) from None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = torch.from_numpy(sess.run(None, {"image": x.numpy()})[0])
    return "ONNX Runtime == original", float((out - model(x)).abs().max())


def run_checks(model: ResNet, x: torch.Tensor) -> tuple[list[tuple[str, float, float, bool]], float]:
    """All checks on ``x`` -> (rows of (check, max diff, relative diff, ok), max |logit|)."""
    model = model.eval()
    x = valid_crop(model, x)
    with torch.no_grad():
        scale = float(model(x).abs().max())
    results = check_rotations(model, x) + [check_dense_vs_patch(model, x), check_fold(model, x)]
    rows = []
    for label, d in results:
        rel = d / max(scale, 1.0)
        rows.append((label, d, rel, rel <= TOLERANCE))
    return rows, scale


def export_and_check(model: ResNet, onnx: str | os.PathLike) -> dict:
    """Fold ``model``, write it as ONNX and compare both with the original on a random input."""
    model = model.eval()
    export_onnx(fold(model), onnx)
    n = model.receptive_field + 8 * model.stride
    x = torch.rand(1, 3, n, n, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        scale = float(model(x).abs().max())
    return {
        "path": Path(onnx),
        "size": n,
        "fold": check_fold(model, x)[1],
        "onnx": check_onnx(model, onnx, x)[1],
        "max_logit": scale,
    }
