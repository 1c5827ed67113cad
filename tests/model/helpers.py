"""Shared helpers for the model tests."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from mitodet.model import create_model


def randomize_norms(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every batch norm non-trivial statistics and affine terms, then eval mode.

    (Fresh blocks are zero-initialised identities: without this, the residual paths
    would not be exercised by the tests.)
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.randn(n, generator=g) * 0.5 + 1.0)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval()


def random_model(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return randomize_norms(create_model(name, **overrides), seed)


def real_image(shared_data, size: int | None = None) -> torch.Tensor:
    """A real H&E patch (ICPR 2012 MITOS, 256x256) as [1, 3, H, W] in [0, 1]."""
    from tests.conftest import need

    path = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()
    return x if size is None else x[..., :size, :size].contiguous()
