"""Balanced, augmented mini-batches drawn on the training device.

Each step: pick ``positive_fraction`` of the batch among the positive centres and the
rest among the negatives (kinds mixed by ``sampling.negative_mix``), shift every centre
by up to ``augment.shift`` px, gather the windows (one gather), then flip, deform and
recolour them (one ``grid_sample`` + one einsum). Random numbers come from a CPU
generator reseeded from (seed, epoch, rank) at the start of every epoch, so an epoch
is the same whether the run was resumed or not, and every DDP rank draws other batches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mitodet.augment.transforms import augment, sample_params
from mitodet.errors import MitodetError
from mitodet.train.engine import logits_center
from mitodet.train.patches import KINDS, Pool


class BatchSampler:
    """Draws (inputs [B,3,rf,rf] float, labels [B] int64) batches from a :class:`Pool`."""

    def __init__(self, pool: Pool, cfg, rf: int, batch_size: int | None = None, rank: int = 0):
        self.pool, self.cfg, self.rf, self.rank = pool, cfg, rf, rank
        self.batch = batch_size or cfg.sampling.batch_size
        self.n_pos = max(1, min(self.batch - 1, int(round(self.batch * cfg.sampling.positive_fraction))))
        self.n_neg = self.batch - self.n_pos
        self.margin = int(math.ceil(2.5 * cfg.augment.elastic.alpha)) + 1 if cfg.augment.elastic.p > 0 else 0
        self.window = rf + 2 * self.margin
        if pool.pos.shape[0] == 0:
            raise MitodetError("data", "no positive (mitotic figure) centre in the training images")
        if pool.neg.shape[0] == 0:
            raise MitodetError("data", "no negative centre in the training images")
        counts = torch.bincount(pool.neg_kind.cpu(), minlength=len(KINDS))
        self.start = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)[:-1]])
        self.count = counts
        mix = cfg.sampling.negative_mix
        w = torch.tensor([float(mix.get(k, 0.0)) if counts[i] > 0 else 0.0 for i, k in enumerate(KINDS)])
        if w.sum() <= 0:  # no weight on the kinds present: uniform over all negatives
            w = counts.double()
        self.kind_weights = w / w.sum()
        self.gen = torch.Generator()
        self.reseed(0)

    def reseed(self, epoch: int) -> None:
        self.gen.manual_seed((self.cfg.seed * 1_000_003 + epoch * 7_919 + self.rank * 104_729) % (2**63))

    def draw(self):
        """CPU indices and augmentation parameters of one batch."""
        g = self.gen
        pos = torch.randint(0, self.pool.pos.shape[0], (self.n_pos,), generator=g)
        kinds = torch.multinomial(self.kind_weights, self.n_neg, replacement=True, generator=g)
        u = torch.rand(self.n_neg, generator=g, dtype=torch.float64)
        neg = self.start[kinds] + (u * self.count[kinds]).long().clamp_max(self.count[kinds] - 1)
        s = self.cfg.augment.shift
        shift = torch.randint(-s, s + 1, (self.batch, 2), generator=g)
        params = sample_params(self.batch, self.cfg.augment, g)
        return pos, neg, shift, params

    def sample(self):
        pos, neg, shift, params = self.draw()
        dev = self.pool.device
        centres = torch.cat([self.pool.pos[pos.to(dev)], self.pool.neg[neg.to(dev)]])
        shift = shift.to(dev)
        win = self.pool.gather(centres[:, 0], centres[:, 1] + shift[:, 0], centres[:, 2] + shift[:, 1], self.window)
        x = augment(win, params.to(dev), self.cfg.augment, self.rf)
        y = torch.cat([torch.ones(self.n_pos, dtype=torch.int64), torch.zeros(self.n_neg, dtype=torch.int64)]).to(dev)
        return x, y

    @staticmethod
    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy at the centre cell (the batch is already class-balanced)."""
        return F.cross_entropy(logits_center(out), y)


def fixed_patches(pool: Pool, rf: int, n_neg: int, seed: int):
    """Validation patches: every positive + a fixed seeded sample of negatives (uint8, centre, no augmentation).

    Returns (windows [N,3,rf,rf] uint8, labels [N] int64) on the pool's device.
    """
    g = torch.Generator().manual_seed(seed)
    q = pool.neg.shape[0]
    pick = torch.randperm(q, generator=g)[: min(n_neg, q)].sort().values
    centres = torch.cat([pool.pos, pool.neg[pick.to(pool.device)]])
    labels = torch.cat([torch.ones(pool.pos.shape[0]), torch.zeros(len(pick))]).long().to(pool.device)
    if centres.shape[0] == 0:
        return torch.zeros(0, 3, rf, rf, dtype=torch.uint8, device=pool.device), labels
    return pool.gather(centres[:, 0], centres[:, 1], centres[:, 2], rf), labels
