"""A valid-convolution network whose response peaks exactly on a bright impulse."""

import torch
from torch import nn


class ImpulseNet(nn.Module):
    """conv k x k (centred box on the summed RGB) -> 2x2 max-pool: rf = k + 1, stride 2."""

    def __init__(self, k: int = 9):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, k, bias=True)
        with torch.no_grad():
            self.conv.weight.zero_()
            c = k // 2
            self.conv.weight[1, :, c, c] = 20.0  # impulse -> high mitosis logit at its centre only
            self.conv.bias[:] = torch.tensor([0.0, -10.0])
        self.pool = nn.MaxPool2d(2)
        self.k = k
        self.receptive_field, self.stride = k + 1, 2
        self.offset = (self.receptive_field - 1) / 2

    def output_size(self, n: int) -> int:
        return max(0, (n - self.k + 1) // 2)

    def forward(self, x):
        return self.pool(self.conv(x))
