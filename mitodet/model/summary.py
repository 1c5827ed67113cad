"""Model summary: parameters, convolution layers, FLOPs per output pixel, rf, stride."""

from __future__ import annotations

import torch
from torch import nn

from mitodet.model.export import fold
from mitodet.model.resnet import ResNet


def _conv_macs(module: nn.Module) -> int:
    """Multiply-accumulates per output position of all plain convs inside ``module``."""
    return sum(
        m.out_channels * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        for m in module.modules()
        if isinstance(m, nn.Conv2d)
    )


def flops_per_output_pixel(model: ResNet) -> float:
    """FLOPs (2 per multiply-add, convolutions only) per output cell of DENSE inference.

    A layer working at stride ``s`` runs ``(stride / s)**2`` times per output cell.
    """
    net = model if getattr(model, "folded", False) else fold(model)
    jump, total = 1, 0.0
    for layer in net.features:
        if isinstance(layer, nn.MaxPool2d):
            jump *= 2
        total += 2 * _conv_macs(layer) * (net.stride / jump) ** 2
    return total


@torch.no_grad()
def flops_per_patch(model: ResNet, size: int | None = None) -> int:
    """FLOPs of one forward pass on a ``size x size`` patch (default: the receptive field)."""
    net = model if getattr(model, "folded", False) else fold(model)
    size = size or net.receptive_field
    total = 0

    def hook(m, inp, out):
        nonlocal total
        total += 2 * out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        net(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return total


def summarize(model: ResNet) -> dict:
    """Facts about ``model`` (as printed by ``mitodet model summary``)."""
    per_out = flops_per_output_pixel(model)
    return {
        "name": getattr(model, "config", {}).get("name", type(model).__name__),
        "class": type(model).__name__,
        "params": sum(p.numel() for p in model.parameters()),
        "conv_layers": model.n_layers,
        "receptive_field": model.receptive_field,
        "stride": model.stride,
        "offset": model.offset,
        "flops_per_output_pixel": per_out,
        "flops_per_input_pixel": per_out / model.stride**2,
        "flops_per_patch": flops_per_patch(model),
    }
