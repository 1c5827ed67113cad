"""``mitodet augment preview``: real training windows of a config through its augmentation."""

from __future__ import annotations

import os

import numpy as np
import torch

from mitodet.augment.preview import preview_grid
from mitodet.errors import MitodetError
from mitodet.model import create_model
from mitodet.train.config import load_config
from mitodet.train.data import SplitData, labelled_records, train_val_images
from mitodet.train.patches import build_pool
from mitodet.train.sampler import BatchSampler

PROTOCOLS = {"both": ["ca-rgb", "ca-od"], "ca-rgb": ["ca-rgb"], "ca-od": ["ca-od"]}


def augment_preview(
    config: str | os.PathLike,
    protocol: str = "both",
    n: int = 8,
    n_aug: int = 7,
    negatives: bool = False,
    seed: int = 0,
    overrides=(),
) -> tuple[np.ndarray, dict]:
    """A grid (HxWx3 uint8) of ``n`` real positive (or negative) windows of the config's labelled
    data and ``n_aug`` augmentations of each per protocol, and facts about it.

    Only the labelled images are read: tissue tiles and mined-negative tables of the config are
    not needed (the preview works on a fresh clone without ``mitodet mine residual``)."""
    protos = PROTOCOLS.get(protocol)
    if protos is None:
        raise MitodetError("--protocol", f"{protocol!r}: expected ca-rgb, ca-od or both")
    cfg = load_config(config, list(overrides) + ["data.tissue=[]", "data.negatives=[]", "data.keep_negatives=null"])
    records = labelled_records(cfg)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(records), generator=g)[: max(n * 4, 16)].tolist()
    records = [records[i] for i in sorted(pick)]
    imgs, _ = train_val_images(cfg, SplitData(records, [r.id for r in records], []))
    pool = build_pool(imgs)
    rf = create_model(cfg.model.name).receptive_field
    sampler = BatchSampler(pool, cfg, rf)
    table = pool.neg if negatives else pool.pos
    c = table[torch.randperm(table.shape[0], generator=g)[:n]]
    win = pool.gather(c[:, 0], c[:, 1], c[:, 2], sampler.window)
    img = preview_grid(win, cfg.augment, protos, rf, n_aug, seed)
    return img, {"patches": int(c.shape[0]), "protocols": protos, "rf": rf, "window": sampler.window}
