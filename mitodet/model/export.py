"""Export for inference: fold P4 filters, batch norm and input scaling into plain convs.

``fold(model)`` returns a copy whose every convolution is an ordinary ``nn.Conv2d``
(the four rotated filter copies stacked, batch norm folded into weight and bias, the
input normalisation folded into the first convolution, exact because there is no
padding). The copy keeps ``receptive_field``, ``stride``, ``offset``, ``output_size``
and ``config``, so inference code can use it in place of the original.
``export_onnx`` writes that folded network with dynamic batch/height/width.
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_path
from mitodet.model.p4 import N_ROT, GroupConv, LiftingConv, P4BatchNorm
from mitodet.model.resnet import Block, ConvUnit, Normalize, ResNet

EXPORT_EXTRA = "pip install 'mitodet[export]'"  # onnx + onnxruntime


def _conv_weight(conv: Any) -> torch.Tensor:
    if isinstance(conv, (LiftingConv, GroupConv)):
        return conv.expanded_weight()
    return conv.weight


def _fold_conv_norm(conv: Any, norm: Any) -> nn.Conv2d:
    """One ``nn.Conv2d`` equal to ``norm(conv(x))`` in eval mode."""
    w = _conv_weight(conv).detach()
    b = conv.bias.detach() if getattr(conv, "bias", None) is not None else w.new_zeros(w.shape[0])
    if isinstance(norm, nn.BatchNorm2d | nn.BatchNorm3d):
        assert norm.running_var is not None and norm.running_mean is not None  # eval-mode statistics
        scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias.detach() - norm.running_mean * scale
        if isinstance(norm, P4BatchNorm):  # one statistic per field, shared by 4 rotations
            scale, shift = scale.repeat_interleave(N_ROT), shift.repeat_interleave(N_ROT)
        w, b = w * scale[:, None, None, None], b * scale + shift
    out = nn.Conv2d(w.shape[1], w.shape[0], w.shape[-1], bias=True, device=w.device, dtype=w.dtype)
    out.weight.data.copy_(w)
    out.bias.data.copy_(b)  # type: ignore[union-attr]  # bias=True above
    return out


@torch.no_grad()
def fold(model: ResNet, channels_last: bool = True) -> ResNet:
    """Plain-``Conv2d`` copy of ``model`` (eval mode) with equal outputs (to ~1e-5).

    ``channels_last`` stores the weights in channels-last memory format: oneDNN then runs
    every convolution in NHWC, ~1.3-1.5x faster on CPU for these few-channel layers
    (outputs are then NHWC-strided tensors of the usual shape).
    """
    folded = copy.deepcopy(model).eval()
    for unit in folded.modules():
        if isinstance(unit, ConvUnit):
            unit.conv, unit.norm = _fold_conv_norm(unit.conv, unit.norm), nn.Identity()
        elif isinstance(unit, Block):
            unit.convs = nn.ModuleList(_fold_conv_norm(c, n) for c, n in zip(unit.convs, unit.norms, strict=False))
            unit.norms = nn.ModuleList(nn.Identity() for _ in unit.convs)
            if unit.proj is not None:
                unit.proj, unit.proj_norm = _fold_conv_norm(unit.proj, unit.proj_norm), nn.Identity()
    feats = folded.features
    first, second = feats[0], feats[1]
    if isinstance(first, Normalize) and isinstance(second, ConvUnit):
        # conv((x - m) / s) = conv(x) / s - m/s * sum(w): exact with valid convolutions.
        m, s, conv = first.mean, first.std, cast(nn.Conv2d, second.conv)
        assert conv.bias is not None  # folded convolutions always carry a bias
        conv.bias.data -= conv.weight.sum(dim=(1, 2, 3)) * m / s
        conv.weight.data /= s
        feats[0] = nn.Identity()
    folded.folded = True
    return folded.to(memory_format=torch.channels_last) if channels_last else folded  # type: ignore[call-overload]


def export_onnx(model: ResNet, path: str | os.PathLike, opset: int = 17) -> Path:
    """Write the folded ``model`` as ONNX (input ``image`` [B,3,H,W] in [0,1], output ``logits``).

    Needs the ``onnx`` package (the ``[export]`` extra); without it, a one-line MitodetError says so."""
    try:
        import onnx  # noqa: F401  (torch's exporter imports it; fail here with the remedy instead)
    except ImportError:
        raise MitodetError("onnx", f"not installed; ONNX export needs the extra: {EXPORT_EXTRA}") from None
    net = model if getattr(model, "folded", False) else fold(model)
    rf = net.receptive_field
    example = torch.rand(1, 3, rf + 2 * net.stride, rf + 2 * net.stride)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # The TorchScript-based exporter: the dynamo one needs onnxscript, not a dependency. Torch
        # releases before 2.5 have only that exporter and no ``dynamo`` argument.
        extra: dict[str, Any] = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
        torch.onnx.export(
            net,
            (example,),
            str(tmp),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "logits": {0: "batch", 2: "out_height", 3: "out_width"},
            },
            opset_version=opset,
            **extra,
        )
    return Path(path)


def import_onnxruntime():
    """``onnxruntime`` with its telemetry off (unless the user set ORT_DISABLE_TELEMETRY): from
    1.29 on it sends usage telemetry, and on a read-only HOME prints a coloured warning at import.
    Slides of patients are no place for an outbound connection. Raises ImportError."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime
