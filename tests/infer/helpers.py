"""Shared pieces of the detection tests: a valid-convolution network whose response peaks
exactly on a bright impulse, two tiny checkpoints, and an executor that dies mid-run."""

from pathlib import Path

import torch
from torch import nn

from mitodet.infer import run
from mitodet.model import create_model, save_checkpoint


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


def tiny_pair(folder: Path, threshold: float = 0.45) -> list[Path]:
    """Two tiny checkpoints (seeds 0 and 1) at 0.25 µm/px: a.pt and b.pt in ``folder``."""
    paths = []
    for seed, name in [(0, "a.pt"), (1, "b.pt")]:
        torch.manual_seed(seed)
        save_checkpoint(folder / name, create_model("tiny").eval(), mpp=0.25, threshold=threshold)
        paths.append(folder / name)
    return paths


class Interrupted(Exception):
    """What :class:`Stopper` raises."""


class Stopper(run.LocalExecutor):
    """Dies after two regions (jobs), as a killed run would."""

    def run(self, jobs, tissue_of):
        for k, item in enumerate(super().run(jobs, tissue_of)):
            if k == 2:
                raise Interrupted
            yield item
