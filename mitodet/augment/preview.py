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


def column_labels(protocols: list[str], n_aug: int) -> list[str]:
    """What each column of :func:`preview_grid` shows: per protocol its original, then its augmentations."""
    return [lab for p in protocols for lab in ["original", *(f"{p.upper()} {i + 1}" for i in range(n_aug))]]


def write_png(path: str | os.PathLike, img: np.ndarray, scale: int = 2, labels: list[str] | None = None) -> None:
    """The grid enlarged ``scale`` times, under a header naming each column (``labels``)."""
    from PIL import ImageDraw, ImageFont

    im = Image.fromarray(img)
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    if labels:
        font = ImageFont.load_default(size=max(10, 6 * scale))
        bar = 8 * scale + 6
        out = Image.new("RGB", (im.width, im.height + bar), (255, 255, 255))
        out.paste(im, (0, bar))
        draw = ImageDraw.Draw(out)
        cell = im.width / len(labels)
        for i, text in enumerate(labels):
            draw.text(((i + 0.5) * cell, bar / 2), text, font=font, anchor="mm", fill=(20, 20, 20))
        im = out
    with atomic_path(path) as tmp:
        im.save(tmp)
