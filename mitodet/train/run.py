"""One training run as in the paper: balanced batches, SGD + momentum, cosine cyclic LR, the
best checkpoint by validation loss. Wiring only: the epoch and the validation pass are in
:mod:`~mitodet.train.engine`, the run folder in :mod:`~mitodet.train.rundir`.

``--resume`` continues bit-exactly (on CPU) where the last finished epoch stopped.
Distributed: under ``torchrun`` (WORLD_SIZE > 1) each rank samples its own batches and
gradients are averaged by DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0
validates and writes.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from mitodet.data.split import read_split
from mitodet.errors import MitodetError
from mitodet.model import create_model, load_checkpoint, save_checkpoint
from mitodet.train.config import Config, resolve_paths
from mitodet.train.data import SplitData, labelled_records, split_records, train_val_images
from mitodet.train.device import barrier, broadcast_flag, init_dist
from mitodet.train.engine import StepCallback, evaluate, train_one_epoch
from mitodet.train.patches import Pool, build_pool
from mitodet.train.rundir import (
    load_state,
    new_run_dir,
    plot_losses,
    save_state,
    set_rng_state,
    write_metrics,
    write_run_files,
)
from mitodet.train.sampler import BatchSampler, fixed_patches

log = logging.getLogger(__name__)


@dataclass
class Summary:
    run_dir: Path
    epochs: int
    best_epoch: int | None
    best_val_loss: float | None
    best_val_f1: float | None
    stopped_early: bool


def prepare_data(
    cfg: Config, run_dir: Path | None, resume: bool, on_image: Callable[[int, int], None] | None = None
) -> tuple[SplitData, Pool, Pool]:
    """Records, split (created, or read back from the run folder when resuming), pools."""
    records = labelled_records(cfg)
    if resume and run_dir is not None and (run_dir / "split.json").is_file():
        split = SplitData(records, *read_split(run_dir / "split.json"))
    else:
        split = split_records(cfg, records)
    train_imgs, val_imgs = train_val_images(cfg, split, on_image)
    return split, build_pool(train_imgs), build_pool(val_imgs)


def _init_model(cfg: Config, resume: bool) -> torch.nn.Module:
    net = create_model(cfg.model.name)  # fails on an unknown name before data loading
    if cfg.model.init and not resume:
        init, _ = load_checkpoint(cfg.model.init)
        if init.config != net.config:
            raise MitodetError(cfg.model.init, f"model.init is a {init.config} model, the config asks for {net.config}")
        net.load_state_dict(init.state_dict())
    return net


def _epoch_line(row: dict) -> str:
    val = (
        f"  val loss {row['val_loss']:.4f}  F1 {row['val_f1']:.3f}  AUC {row['val_auc']:.3f}"
        if "val_loss" in row
        else ""
    )
    return f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}{val}  {row['patches_per_s']:.0f} patches/s"


def train(
    cfg: Config,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    max_minutes: float | None = None,
    on_step: StepCallback | None = None,
    on_image: Callable[[int, int], None] | None = None,
) -> Summary:
    """Train (or resume) one run; returns its :class:`Summary`.

    Progress goes to ``on_step(step, steps, loss, samples/s)`` and ``on_image(done, total)``
    (data loading); one INFO log record per epoch.
    """
    dist_info, device = init_dist(cfg.device)
    if not resume:
        cfg = resolve_paths(cfg)
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(cfg)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    net = _init_model(cfg, resume)
    rf = int(net.receptive_field)
    main = dist_info.main
    split, train_pool, val_pool = prepare_data(cfg, run_dir, resume, on_image if main else None)
    desc = {
        "train": train_pool.describe(),
        "val": val_pool.describe(),
        "train_images": len(split.train_ids),
        "val_images": len(split.val_ids),
    }
    if main:
        write_run_files(run_dir, cfg, split, desc)
    train_pool, val_pool = train_pool.to(device), val_pool.to(device)
    sampler = BatchSampler(train_pool, cfg, rf, rank=dist_info.rank)
    val_x, val_y = fixed_patches(val_pool, rf, cfg.val.negatives, cfg.seed) if val_pool.ids else (None, None)

    net.to(device)
    model: torch.nn.Module = net
    if dist_info.world > 1:
        model = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    fwd = torch.compile(model) if cfg.train.compile else model
    o, steps = cfg.optim, cfg.train.steps_per_epoch
    opt = torch.optim.SGD(
        net.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=o.cycle_epochs * steps, T_mult=o.cycle_mult, eta_min=o.lr_min
    )
    start, best, rows = 0, float("inf"), []
    if resume:
        state = load_state(run_dir)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], sampler.gen)
        start, best, rows = state["epoch"], state["best_val_loss"], state["metrics"]

    budget = max_minutes * 60.0 if max_minutes is not None else cfg.train.time_budget_s
    bf16 = cfg.train.amp == "bf16"
    t_run = time.perf_counter()
    epoch_times: list[float] = []
    stopped = False
    for epoch in range(start, cfg.train.epochs):
        sampler.reseed(epoch)
        row = {"epoch": epoch + 1, "steps": (epoch + 1) * steps}
        row.update(
            train_one_epoch(
                fwd,
                sampler,
                opt,
                sched,
                device,
                steps,
                bf16,
                dist_info.world,
                cfg.train.log_every,
                on_step if main else None,
            )
        )
        row["lr"] = opt.param_groups[0]["lr"]
        epoch_times.append(row["seconds"])
        stop = False
        if main:
            if val_x is not None and val_x.shape[0]:
                row.update(evaluate(net, val_x, val_y, rf, cfg.val.batch_size, bf16))
            rows.append(row)
            vl = row.get("val_loss", row["train_loss"])
            if vl < best:
                best = vl
                save_checkpoint(
                    run_dir / "best.pt",
                    net,
                    mpp=0.25,
                    augmentation=cfg.augment.protocol,
                    config=cfg.model_dump(mode="json"),
                    epoch=epoch + 1,
                    val={k: row.get(k) for k in ("val_loss", "val_f1", "val_auc")},
                    data=desc,
                )
            write_metrics(run_dir, rows)
            save_state(run_dir, net, opt, sched, sampler.gen, epoch + 1, best, rows)
            plot_losses(run_dir / "loss.png", rows, cfg.name)
            log.info(_epoch_line(row))
            elapsed = time.perf_counter() - t_run
            stop = (
                budget is not None and elapsed + float(np.mean(epoch_times)) > budget and epoch + 1 < cfg.train.epochs
            )
        if broadcast_flag(stop, dist_info, device):
            stopped = True
            break
    barrier(dist_info)
    with_val = [r for r in rows if "val_loss" in r]
    b = min(with_val, key=lambda r: r["val_loss"]) if with_val else None
    return Summary(
        run_dir, len(rows), b["epoch"] if b else None, b["val_loss"] if b else None, b["val_f1"] if b else None, stopped
    )
