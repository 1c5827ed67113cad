"""Dense (fully convolutional) training: whole windows, every output cell supervised.

The network is the paper's patch classifier applied at every position (valid convolutions:
an output cell sees exactly one rf x rf patch), so supervising all cells of a window is the
same classifier and the same loss as the patch mode, with far more supervision per FLOP.

Each step draws ``sampling.batch_size`` windows of ``dense.window`` px: a share
``dense.positive_windows`` anchored on a labelled mitosis, the rest on negative centres
(kinds mixed by ``sampling.negative_mix``: crop background, imposters, mined, tissue, hard),
each shifted so the anchor stays inside the supervised area. The windows are augmented like
patches (one ``grid_sample``). Every output cell is labelled from where its centre came from
in the source image (through the same flip / zoom / elastic mapping): positive within
``dense.pos_radius_um`` of a labelled mitosis, ignored out to ``dense.ignore_radius_um`` (the
7.5 µm matching radius), negative beyond. Cells centred in the reflected border of an image are
ignored: detection reflects the same border for context but never reports a cell there.

Loss: ``0.5 * mean CE over positive cells + 0.5 * weighted mean CE over negative cells`` of the
batch, i.e. the paper's class-balanced patch loss in expectation (each cell is a patch drawn
from its class); negative cells of crops with only their centre labelled are weighted by
``dense.unlabelled_weight``, those on a labelled imposter by ``dense.imposter_weight``, and
positive cells by their mitosis's weight (a field mitosis of low panel confidence counts less).
``dense.hard_negative_fraction`` < 1 keeps only the hardest share of the negative cells in the
negative term (online hard-negative mining within the batch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mitodet.augment.transforms import augment, sample_params, sampling_grid, window_margin
from mitodet.errors import MitodetError
from mitodet.schema import um_to_px
from mitodet.train.patches import Pool
from mitodet.train.sampler import AnchorSampler

IGNORE = -1


def reflect_coord(c: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Continuous coordinates mirrored into [0, n - 1] as reflection padding extends an axis of n pixels."""
    period = (2 * (n - 1)).clamp_min(1).to(c.dtype)
    r = torch.remainder(c, period)
    return torch.where(r > (n - 1).to(c.dtype), period - r, r)


class DenseSampler(AnchorSampler):
    """Draws (inputs [B,3,S,S], (labels [B,h,w] int64 with IGNORE, weights [B,h,w])) from a :class:`Pool`."""

    def __init__(self, pool: Pool, cfg, model, rank: int = 0):
        d = cfg.dense
        batch = cfg.sampling.batch_size
        n_pos = int(round(batch * d.positive_windows))
        super().__init__(pool, cfg, batch, n_pos, rank)
        self.size = d.window
        if not model.valid_input_size(self.size):
            raise MitodetError(
                "dense.window",
                f"{self.size} px does not give exactly equivariant output for "
                f"{model.config.get('name')}; use an even size >= {model.receptive_field}",
            )
        self.cells = model.output_size(self.size)
        self.stride, self.offset = model.stride, model.offset
        self.margin = window_margin(cfg.augment, self.size)
        self.window = self.size + 2 * self.margin
        # anchors stay inside the central 80 % of the supervised area
        self.shift = max(0, int(self.stride * (self.cells - 1) / 2 * 0.8))
        mpp = cfg.data.model_mpp
        self.pos_r = um_to_px(d.pos_radius_um, mpp)
        self.ign_r = max(self.pos_r, um_to_px(d.ignore_radius_um, mpp))
        self.imp_r, self.imp_w = um_to_px(d.imposter_radius_um, mpp), d.imposter_weight
        # input pixel rows/cols whose average is each cell centre (offset is k or k + 0.5)
        lo = math.floor(self.offset)
        idx = lo + self.stride * torch.arange(self.cells)
        self._cell_idx = (idx, idx + 1) if self.offset != lo else (idx, idx)

    def draw(self):
        pos, neg, shift = self.draw_anchors(self.shift)
        params = sample_params(self.batch, self.cfg.augment, self.gen)
        return pos, neg, shift, params

    def sample(self):
        pos, neg, shift, params = self.draw()
        dev = self.pool.device
        anchors = self.anchors(pos, neg)
        self.add_stain(params, anchors[:, 0])
        img = anchors[:, 0]
        cy, cx = anchors[:, 1] + shift[:, 0].to(dev), anchors[:, 2] + shift[:, 1].to(dev)
        win = self.pool.gather(img, cy, cx, self.window)
        params = params.to(dev)
        x = augment(win, params, self.cfg.augment, self.size)
        return x, self.targets(params, img, cy, cx)

    @torch.no_grad()
    def targets(self, params, img: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor):
        """Label and weight of every output cell of the windows centred on (cy, cx) of images ``img``."""
        dev = img.device
        grid = sampling_grid(params, self.window, self.size, dev)  # [B, S, S, 2] in window coordinates
        a, b = (i.to(dev) for i in self._cell_idx)
        g = (grid[:, a][:, :, a] + grid[:, b][:, :, b]) / 2  # [B, h, w, 2] at the cell centres
        half = (self.window - 1) / 2
        top = (cy - self.window // 2).to(g.dtype)[:, None, None]
        left = (cx - self.window // 2).to(g.dtype)[:, None, None]
        h, w = self.pool.height[img][:, None, None], self.pool.width[img][:, None, None]
        ry, rx = top + (g[..., 1] + 1) * half, left + (g[..., 0] + 1) * half
        # detection reports only cells centred inside the image (the reflected border is context)
        outside = (ry < -0.5) | (ry > h - 0.5) | (rx < -0.5) | (rx > w - 0.5)
        iy, ix = reflect_coord(ry, h), reflect_coord(rx, w)
        mf = self.pool.mitoses[img]  # [B, K, 2] (y, x)
        d2 = (iy[..., None] - mf[:, None, None, :, 0]) ** 2 + (ix[..., None] - mf[:, None, None, :, 1]) ** 2
        d = d2.min(dim=-1).values.sqrt()
        labels = torch.zeros_like(d, dtype=torch.int64)
        labels[d <= self.ign_r] = IGNORE
        labels[d <= self.pos_r] = 1
        labels[outside] = IGNORE
        # positives weigh as their mitosis (a low-confidence one less), negatives as their image,
        # and negatives on a labelled imposter ``dense.imposter_weight`` times that
        nearest = d2.argmin(dim=-1)
        mw = self.pool.mitosis_weight[img][:, None, None, :]  # [B, 1, 1, K]
        wpos = torch.take_along_dim(mw, nearest[..., None], dim=-1)[..., 0].expand_as(d)
        wneg = self.pool.neg_weight[img][:, None, None].expand_as(d)
        if self.imp_w != 1.0:
            im = self.pool.imposters[img]  # [B, J, 2]
            e2 = (iy[..., None] - im[:, None, None, :, 0]) ** 2 + (ix[..., None] - im[:, None, None, :, 1]) ** 2
            wneg = torch.where(e2.min(dim=-1).values <= self.imp_r**2, wneg * self.imp_w, wneg)
        weights = torch.where(labels == 0, wneg, torch.where(labels == 1, wpos, torch.zeros_like(d)))
        return labels, weights

    def loss(self, out: torch.Tensor, target) -> torch.Tensor:
        """Class-balanced cross-entropy over the supervised cells (see the module docstring)."""
        return balanced_loss(out, target, self.cfg.dense.hard_negative_fraction)


def balanced_loss(out: torch.Tensor, target, hard_fraction: float = 1.0) -> torch.Tensor:
    """0.5 * mean CE of the positive cells + 0.5 * weighted mean CE of the negative cells; with
    ``hard_fraction`` < 1 only that share of the negative cells with the highest (weighted) loss
    counts (online hard-negative mining inside the batch)."""
    labels, weights = target
    ce = F.cross_entropy(out, labels.clamp_min(0), reduction="none")
    pos, neg = weights * (labels == 1), (labels == 0)
    wneg = weights * neg
    if hard_fraction < 1.0:
        values = (ce * wneg).flatten()
        k = max(1, int(hard_fraction * int(neg.sum())))
        top = torch.topk(values, k)
        neg_term = top.values.sum() / wneg.flatten()[top.indices].sum().clamp_min(1e-6)
    else:
        neg_term = (ce * wneg).sum() / wneg.sum().clamp_min(1e-6)
    return 0.5 * (ce * pos).sum() / pos.sum().clamp_min(1e-6) + 0.5 * neg_term
