"""Balanced, augmented mini-batches drawn on the training device (the paper's patch mode).

Each step: pick ``positive_fraction`` of the batch among the positive centres and the
rest among the negatives (kinds mixed by ``sampling.negative_mix``), shift every centre
by up to ``augment.shift`` px, gather the windows (one gather), then flip, deform and
recolour them (one ``grid_sample`` + one einsum). Random numbers come from a CPU
generator reseeded from (seed, epoch, rank) at the start of every epoch, so an epoch
is the same whether the run was resumed or not, and every DDP rank draws other batches.
The dense mode's sampler (:mod:`mitodet.train.dense`) shares the anchor drawing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mitodet.augment.transforms import AugParams, augment, sample_params, stain_maps, window_margin
from mitodet.errors import MitodetError
from mitodet.train.engine import logits_center
from mitodet.train.patches import KINDS, Pool


class AnchorSampler:
    """What both training modes share: the pool, the negative-kind mix, the generator, stain jitter."""

    def __init__(self, pool: Pool, cfg, batch: int, n_pos: int, rank: int = 0):
        self.pool, self.cfg, self.rank = pool, cfg, rank
        self.batch, self.n_pos = batch, n_pos
        self.n_neg = batch - n_pos
        if n_pos and pool.pos.shape[0] == 0:
            raise MitodetError("data", "no positive (mitotic figure) centre in the training images")
        if self.n_neg and pool.neg.shape[0] == 0:
            raise MitodetError("data", "no negative centre in the training images")
        counts = torch.bincount(pool.neg_kind.cpu(), minlength=len(KINDS))
        self.start = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)[:-1]])
        self.count = counts
        mix = cfg.sampling.negative_mix
        w = torch.tensor([float(mix.get(k, 0.0)) if counts[i] > 0 else 0.0 for i, k in enumerate(KINDS)])
        if w.sum() <= 0:  # no weight on the kinds present: uniform over all negatives
            w = counts.double()
        self.kind_weights = w / w.sum()
        self.stain = pool.stain.cpu() if pool.stain is not None else None
        if cfg.augment.stain.p > 0 and self.stain is None:
            raise MitodetError("augment.stain", "stain jitter needs the pool's stain vectors (attach_stain_vectors)")
        self.gen = torch.Generator()
        self.reseed(0)

    def reseed(self, epoch: int) -> None:
        self.gen.manual_seed((self.cfg.seed * 1_000_003 + epoch * 7_919 + self.rank * 104_729) % (2**63))

    def draw_anchors(self, shift: int):
        """CPU indices of ``n_pos`` positive and ``n_neg`` negative anchors, and their random shifts."""
        g = self.gen
        pos = torch.randint(0, max(1, self.pool.pos.shape[0]), (self.n_pos,), generator=g)
        kinds = torch.multinomial(self.kind_weights, max(1, self.n_neg), replacement=True, generator=g)[: self.n_neg]
        u = torch.rand(self.n_neg, generator=g, dtype=torch.float64)
        neg = self.start[kinds] + (u * self.count[kinds]).long().clamp_max(self.count[kinds] - 1)
        shifts = torch.randint(-shift, shift + 1, (self.batch, 2), generator=g)
        return pos, neg, shifts

    def anchors(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """(image, y, x) of the drawn anchors, on the pool's device."""
        dev = self.pool.device
        return torch.cat([self.pool.pos[pos.to(dev)], self.pool.neg[neg.to(dev)]])

    def add_stain(self, params: AugParams, images: torch.Tensor) -> None:
        """Stain-vector jitter: each window of image i re-mixed towards another training image's stains."""
        c = self.cfg.augment.stain
        if c.p <= 0 or self.stain is None:
            return
        g, n = self.gen, images.shape[0]
        on = torch.rand(n, generator=g) < c.p
        other = torch.randint(0, self.stain.shape[0], (n,), generator=g)
        mix = torch.rand(n, generator=g) * on
        gains = 1 + torch.randn(n, 3, generator=g) * c.concentration * on[:, None]
        gains[:, 2] = 1.0  # the residual (non-H&E absorbers) is left as it is
        src = self.stain[images.cpu()]
        params.stain = stain_maps(src, self.stain[other], mix, gains)


class BatchSampler(AnchorSampler):
    """Draws (inputs [B,3,rf,rf] float, labels [B] int64) batches from a :class:`Pool`."""

    def __init__(self, pool: Pool, cfg, rf: int, batch_size: int | None = None, rank: int = 0):
        batch = batch_size or cfg.sampling.batch_size
        n_pos = max(1, min(batch - 1, int(round(batch * cfg.sampling.positive_fraction))))
        super().__init__(pool, cfg, batch, n_pos, rank)
        self.rf = rf
        self.margin = window_margin(cfg.augment, rf)
        self.window = rf + 2 * self.margin

    def draw(self):
        """CPU indices and augmentation parameters of one batch."""
        pos, neg, shift = self.draw_anchors(self.cfg.augment.shift)
        params = sample_params(self.batch, self.cfg.augment, self.gen)
        return pos, neg, shift, params

    def sample(self):
        pos, neg, shift, params = self.draw()
        dev = self.pool.device
        centres = self.anchors(pos, neg)
        self.add_stain(params, centres[:, 0])
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
