"""Fully convolutional ResNets with valid convolutions and one 2x2 max-pool.

``P4ResNet`` is the paper's rotation-invariant detector (P4 group convolutions);
``PlainResNet`` is the same network with ordinary convolutions and 4x the channels
(same FLOPs per pixel) for ablations.

Geometry (both networks): no padding anywhere, so the output for an ``n x n`` input
is ``output_size(n)`` cells and output cell ``(i, j)`` sees exactly the input window
``[2i, 2i + rf) x [2j, 2j + rf)``, centred on pixel ``(offset + 2i, offset + 2j)``
with ``offset = (rf - 1) / 2``. An ``rf x rf`` patch gives one cell, so a network
trained on patches is applied densely on a whole image with identical results.

Input-size rule of the max-pool (exact 90° equivariance): the 2x2/stride-2 pool tiles
its input into 2x2 blocks from the top-left corner; a rotated image is tiled the same
way only if the map entering the pool has EVEN size (an odd size drops the last
row/column, which after rotation is a different edge). The layers before the pool
shrink the map by an even number of pixels, so the rule is: input height and width
even (``valid_input_size``). An odd-sized input is computed as if its last row/column
were cut off. Dense tiles must likewise start at even pixel offsets to share the
pool grid of the whole image.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from mitodet.model.p4 import N_ROT, GroupConv, LiftingConv, P4BatchNorm, RotationPool


class Normalize(nn.Module):
    """Maps RGB in [0, 1] to about [-1, 1] (folded into the first convolution on export)."""

    def __init__(self, mean: float = 0.5, std: float = 0.5):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _crop(x: torch.Tensor, c: int) -> torch.Tensor:
    return x[..., c:-c, c:-c] if c else x


class ConvUnit(nn.Module):
    """conv -> batch norm -> ReLU (valid convolution: shrinks the map by k - 1)."""

    def __init__(self, conv: nn.Module, norm: nn.Module, kernel_size: int):
        super().__init__()
        self.conv, self.norm = conv, norm
        self.shrink = kernel_size - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class Block(nn.Module):
    """Residual block of valid convolutions; the skip path is centre-cropped to match.

    ``basic``: 3x3 -> 3x3; ``bottleneck``: 1x1 (reduce) -> 3x3 -> 1x1 (expand).
    A 1x1 projection (+ norm) on the skip path when the width changes.
    """

    def __init__(self, convs, norms, kernel_sizes, proj=None, proj_norm=None):
        super().__init__()
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self.proj, self.proj_norm = proj, proj_norm
        self.shrink = sum(k - 1 for k in kernel_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=False)):
            h = norm(conv(h))
            if i < last:
                h = F.relu(h)
        s = x if self.proj is None else self.proj_norm(self.proj(x))
        return F.relu(h + _crop(s, self.shrink // 2))


class ResNet(nn.Module):
    """Shared layout: stem -> ``blocks_pre`` blocks -> 2x2 max-pool -> ``blocks_post`` blocks
    -> head (rotation pooling for P4) -> 1x1 conv to ``num_classes`` logits."""

    #: P4 fields carry 4 channels each; the plain network multiplies its widths by this.
    channel_mult = 1
    receptive_field: int
    stride: int
    offset: float
    config: dict
    folded: bool = False
    features: nn.Sequential

    def __init__(
        self,
        *,
        width: int = 16,
        width_post: int | None = None,
        block: str = "basic",
        bottleneck: float = 0.5,
        stem_convs: int = 2,
        blocks_pre: int = 2,
        blocks_post: int = 4,
        num_classes: int = 2,
        in_channels: int = 3,
        rotation_pool: str = "max",
    ):
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', not {block!r}")
        if stem_convs < 1 or blocks_pre < 0 or blocks_post < 0 or width < 1:
            raise ValueError("need stem_convs >= 1, blocks_pre/post >= 0, width >= 1")
        m = self.channel_mult
        wpre, wpost = width * m, (width_post or width) * m
        self._rotation_pool = rotation_pool

        layers: list[nn.Module] = [Normalize()]
        layers.append(ConvUnit(self._lift(in_channels, wpre, 3), self._norm(wpre), 3))
        for _ in range(stem_convs - 1):
            layers.append(ConvUnit(self._conv(wpre, wpre, 3), self._norm(wpre), 3))
        layers += [self._block(block, wpre, wpre, bottleneck) for _ in range(blocks_pre)]
        layers.append(nn.MaxPool2d(2, 2))
        cin = wpre
        for _ in range(blocks_post):
            layers.append(self._block(block, cin, wpost, bottleneck))
            cin = wpost
        layers.append(self._head_pool())
        layers.append(nn.Conv2d(cin, num_classes, 1))
        self.features = nn.Sequential(*layers)
        self._geometry()

    # -- layer factories (P4 or plain) -------------------------------------------------
    def _lift(self, cin: int, cout: int, k: int) -> nn.Module:
        raise NotImplementedError

    def _conv(self, cin: int, cout: int, k: int) -> nn.Module:
        raise NotImplementedError

    def _norm(self, c: int) -> nn.Module:
        raise NotImplementedError

    def _head_pool(self) -> nn.Module:
        raise NotImplementedError

    def _block(self, kind: str, cin: int, cout: int, ratio: float) -> Block:
        if kind == "basic":
            ks, widths = [3, 3], [cin, cout, cout]
        else:
            inner = max(1, round(cout * ratio))
            ks, widths = [1, 3, 1], [cin, inner, inner, cout]
        convs = [self._conv(widths[i], widths[i + 1], k) for i, k in enumerate(ks)]
        norms = [self._norm(widths[i + 1]) for i in range(len(ks))]
        nn.init.zeros_(cast(torch.Tensor, norms[-1].weight))  # zero-init residual: each block starts as identity
        proj = proj_norm = None
        if cin != cout:
            proj, proj_norm = self._conv(cin, cout, 1), self._norm(cout)
        return Block(convs, norms, ks, proj, proj_norm)

    # -- geometry ----------------------------------------------------------------------
    def _geometry(self) -> None:
        """Receptive field, stride and shrink computed by walking the layers."""
        rf, jump, shrink_pre, pools = 1, 1, 0, 0
        for layer in self.features:
            s = getattr(layer, "shrink", 0)
            rf += s * jump
            if isinstance(layer, nn.MaxPool2d):
                rf += jump
                jump *= 2
                pools += 1
            elif pools == 0:
                shrink_pre += s
        assert pools == 1, "the network has exactly one 2x2 max-pool"
        self.receptive_field, self.stride, self._shrink_pre = rf, jump, shrink_pre
        self.offset = (rf - 1) / 2
        assert self.output_size(rf) == 1 and self.output_size(rf - 1) == 0, "receptive field"

    def output_size(self, n: int) -> int:
        """Output length for an input length ``n`` (0 when ``n`` < receptive field)."""
        for layer in self.features:
            n -= getattr(layer, "shrink", 0)
            if isinstance(layer, nn.MaxPool2d):
                n //= 2
            if n <= 0:
                return 0
        return n

    def valid_input_size(self, n: int) -> bool:
        """True when an input length ``n`` gives exactly 90°-equivariant output (see module doc)."""
        return n >= self.receptive_field and (n - self._shrink_pre) % 2 == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` RGB in [0, 1] -> logits ``[B, num_classes, h, w]``."""
        return self.features(x)

    @property
    def n_layers(self) -> int:
        """Number of convolution layers (the paper's "70 layers" counts these)."""
        return sum(isinstance(m, (nn.Conv2d, LiftingConv, GroupConv)) for m in self.modules())


class P4ResNet(ResNet):
    """The paper's P4 rotation-invariant ResNet; ``width`` counts P4 fields (4 channels each)."""

    def _lift(self, cin, cout, k):
        return LiftingConv(cin, cout, k)

    def _conv(self, cin, cout, k):
        return GroupConv(cin, cout, k)

    def _norm(self, c):
        return P4BatchNorm(c)

    def _head_pool(self):
        return RotationPool(self._rotation_pool)


class PlainResNet(ResNet):
    """Non-equivariant ablation: ordinary convs with 4x ``width`` channels (same FLOPs as P4)."""

    channel_mult = N_ROT

    def _conv(self, cin, cout, k):
        conv = nn.Conv2d(cin, cout, k, bias=False)
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        return conv

    _lift = _conv

    def _norm(self, c):
        return nn.BatchNorm2d(c)

    def _head_pool(self):
        return nn.Identity()
