"""A PNG grid of augmented real patches, one block per protocol, for a person to judge."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from mitodet.augment.transforms import augment, sample_params
from mitodet.io.atomic import atomic_path


def preview_grid(
    windows: torch.Tensor, cfg, protocols: list[str], rf: int, n_aug: int = 7, seed: int = 0
) -> np.ndarray:
    """Rows: one real patch each (column 0 = original centre), then ``n_aug`` augmentations per protocol.

    ``windows`` are uint8 [N,3,S,S] windows; ``cfg`` an AugmentCfg. Returns an HxWx3 uint8 grid.
    """
    n, _, s, _ = windows.shape
    gen = torch.Generator().manual_seed(seed)
    a = (s - rf) // 2
    blocks = []
    for proto in protocols:
        c = cfg.model_copy(update={"protocol": proto})
        rep = windows.repeat_interleave(n_aug, 0)
        x = augment(rep, sample_params(rep.shape[0], c, gen), c, rf)
        aug = (x.clamp(0, 1) * 255).round().byte().reshape(n, n_aug, 3, rf, rf)
        orig = windows[:, None, :, a : a + rf, a : a + rf]
        blocks.append(torch.cat([orig, aug], 1))  # [N, 1+n_aug, 3, rf, rf]
    grid = torch.cat(blocks, 1)  # columns: protocol blocks side by side
    pad = 2
    g = torch.nn.functional.pad(grid, (pad, pad, pad, pad), value=255)
    rows, cols = g.shape[0], g.shape[1]
    img = g.permute(0, 3, 1, 4, 2).reshape(rows * (rf + 2 * pad), cols * (rf + 2 * pad), 3)
    return img.numpy()


def write_png(path: str | os.PathLike, img: np.ndarray, scale: int = 2) -> None:
    im = Image.fromarray(img)
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        im.save(tmp)
