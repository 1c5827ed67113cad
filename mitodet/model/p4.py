"""P4 group-convolution layers (Cohen & Welling 2016; Bekkers, Lafarge et al. 2018).

Written by hand on ``torch.nn.functional.conv2d`` rather than taken from escnn /
e2cnn: escnn is unmaintained and hard to install, and P4 (the four 90° rotations)
needs only rotated, cyclically shifted copies of each filter, stacked into ONE
ordinary (not grouped) convolution per layer, which keeps cuDNN / oneDNN fast.

Feature layout: a P4 feature map with ``C`` fields is an ordinary tensor
``[B, C*4, H, W]`` whose channel ``c*4 + r`` holds field ``c`` at rotation ``r``.
Rotating the input image by ``k`` quarter turns (``torch.rot90(x, k, (-2, -1))``)
rotates every P4 map spatially by ``k`` AND cyclically shifts its rotation axis by
``k`` (``rotate_p4``); pooling over the rotation axis (``RotationPool``) then
gives maps that just rotate spatially, so per-pixel class logits are invariant.
All convolutions are valid (no padding) so dense and patch-wise outputs agree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

N_ROT = 4


def rotate_p4(x: torch.Tensor, k: int) -> torch.Tensor:
    """The action of a ``k`` quarter-turn rotation on a P4 map ``[B, C*4, H, W]``."""
    b, c4, h, w = x.shape
    x = x.reshape(b, c4 // N_ROT, N_ROT, h, w).roll(k, dims=2)
    return torch.rot90(x, k, dims=(-2, -1)).reshape(b, c4, w if k % 2 else h, h if k % 2 else w)


class LiftingConv(nn.Module):
    """Z2 -> P4: one filter bank applied at the four rotations (``Cin`` -> ``Cout*4`` channels)."""

    def __init__(self, in_channels: int, out_fields: int, kernel_size: int = 3):
        super().__init__()
        self.in_channels, self.out_fields, self.kernel_size = in_channels, out_fields, kernel_size
        self.weight = nn.Parameter(torch.empty(out_fields, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")

    def expanded_weight(self) -> torch.Tensor:
        """``[Cout*4, Cin, k, k]``: output channel ``o*4 + r`` uses the filter rotated ``r`` times."""
        w = torch.stack([torch.rot90(self.weight, r, dims=(-2, -1)) for r in range(N_ROT)], dim=1)
        return w.reshape(self.out_fields * N_ROT, self.in_channels, self.kernel_size, self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.expanded_weight())

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_fields}x4, k={self.kernel_size}"


class GroupConv(nn.Module):
    """P4 -> P4: filter ``[Cout, Cin, 4, k, k]``; for output rotation ``r`` it is rotated ``r``
    times spatially and its input-rotation axis is cycled by ``r``."""

    def __init__(self, in_fields: int, out_fields: int, kernel_size: int = 3):
        super().__init__()
        self.in_fields, self.out_fields, self.kernel_size = in_fields, out_fields, kernel_size
        self.weight = nn.Parameter(torch.empty(out_fields, in_fields, N_ROT, kernel_size, kernel_size))
        # Kaiming normal with the true fan-in (Cin * 4 rotations * k * k).
        std = math.sqrt(2.0 / (in_fields * N_ROT * kernel_size * kernel_size))
        nn.init.normal_(self.weight, 0.0, std)

    def expanded_weight(self) -> torch.Tensor:
        """``[Cout*4, Cin*4, k, k]``, channel ``o*4 + r`` x ``i*4 + s`` = rot^r(W[o, i, s - r])."""
        w = torch.stack([torch.rot90(self.weight.roll(r, dims=2), r, dims=(-2, -1)) for r in range(N_ROT)], dim=1)
        k = self.kernel_size
        return w.reshape(self.out_fields * N_ROT, self.in_fields * N_ROT, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.expanded_weight())

    def extra_repr(self) -> str:
        return f"{self.in_fields}x4, {self.out_fields}x4, k={self.kernel_size}"


class P4BatchNorm(nn.BatchNorm2d):
    """Batch norm of a P4 map with one mean/variance/scale/shift per field, shared by the
    four rotations (otherwise the rotations would be normalised differently).

    Runs as an ordinary 2-D batch norm on the view ``[B, C, 4*H, W]`` (same statistics as
    over ``B x 4 x H x W``; a 5-D view made the following convolutions several times slower).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = x.shape
        return super().forward(x.reshape(b, c4 // N_ROT, N_ROT * h, w)).reshape(b, c4, h, w)


class RotationPool(nn.Module):
    """P4 -> Z2: max (or mean) over the four rotations of each field; rotation invariant."""

    def __init__(self, mode: str = "max"):
        super().__init__()
        if mode not in ("max", "mean"):
            raise ValueError(f"rotation pooling must be 'max' or 'mean', not {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c4, h, w = x.shape
        x = x.reshape(b, c4 // N_ROT, N_ROT, h, w)
        return x.amax(dim=2) if self.mode == "max" else x.mean(dim=2)

    def extra_repr(self) -> str:
        return self.mode
