"""One training run as in the paper: balanced batches, SGD + momentum, cosine cyclic LR, the
best checkpoint by validation loss. Wiring only: the epoch and the validation pass are in
:mod:`~mitodet.train.engine`, the run folder in :mod:`~mitodet.train.rundir`.

``--resume`` continues bit-exactly (on CPU) where the last finished epoch stopped.
Distributed: under ``torchrun`` (WORLD_SIZE > 1) each rank samples its own batches and
gradients are averaged by DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0
validates and writes.
"""

from __future__ import annotations

import functools
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
from mitodet.io.atomic import write_text
from mitodet.model import create_model, load_checkpoint, save_checkpoint
from mitodet.model.widen import widen_into
from mitodet.train.config import Config, resolve_paths
from mitodet.train.data import SplitData, labelled_records, split_records, train_val_images, validation_images
from mitodet.train.dense import DenseSampler
from mitodet.train.device import barrier, broadcast_flag, init_dist
from mitodet.train.engine import EpochCallback, StepCallback, ValCallback, evaluate, train_one_epoch
from mitodet.train.patches import Pool, attach_stain_vectors, build_pool
from mitodet.train.rundir import (
    append_validation,
    load_state,
    mark_training,
    new_run_dir,
    plot_losses,
    save_state,
    set_rng_state,
    unmark_training,
    write_metrics,
    write_run_files,
)
from mitodet.train.sampler import BatchSampler, fixed_patches
from mitodet.train.validate import detection_items, validate_detection

log = logging.getLogger(__name__)


@dataclass
class Summary:
    run_dir: Path
    epochs: int
    best_epoch: int | None
    best_val_loss: float | None
    best_val_f1: float | None
    stopped_early: bool
    best_val_f1_density: float | None = None


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
    train_pool = build_pool(train_imgs)
    if cfg.augment.stain.p > 0:
        train_pool.stain = torch.from_numpy(attach_stain_vectors(train_imgs))
    return split, train_pool, build_pool(val_imgs)


def _init_model(cfg: Config, resume: bool) -> torch.nn.Module:
    net = create_model(cfg.model.name)  # fails on an unknown name before data loading
    if cfg.model.init and not resume:
        init, _ = load_checkpoint(cfg.model.init)
        if init.config == net.config:
            net.load_state_dict(init.state_dict())
        elif not cfg.model.widen:
            asks = f"model.init is a {init.config} model, the config asks for {net.config}"
            raise MitodetError(cfg.model.init, f"{asks} (model.widen: true starts a wider network from it)")
        else:
            try:
                widen_into(init, net)
            except ValueError as e:
                raise MitodetError(cfg.model.init, str(e)) from None
            log.info("model.init %s widened into %s", init.config, net.config)
    return net


def _epoch_line(row: dict) -> str:
    val = (
        f"  val loss {row['val_loss']:.4f}  F1 {row['val_f1']:.3f}  AUC {row['val_auc']:.3f}"
        if "val_loss" in row
        else ""
    )
    if "val_f1_density" in row:
        val += (
            f"  | detection: s {row['val_sensitivity']:.3f}  f {row['val_fp_per_mm2']:.1f}/mm²  "
            f"F1@density {row['val_f1_density']:.3f} (t {row['val_threshold']:.3f})"
        )
    if row.get("val_f1_fields") is not None:
        val += f"  fields F1 {row['val_f1_fields']:.3f}"
    return f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}{val}  {row['patches_per_s']:.0f} samples/s"


def _stage(on_val: ValCallback | None, what: str) -> Callable[[int, int], None] | None:
    """``on_val`` for one stage of validation: ``(done, total)`` -> ``on_val(what, done, total)``."""
    return None if on_val is None else functools.partial(on_val, what)


def _score(row: dict, select: str) -> float | None:
    """What best.pt minimises: the validation loss, or minus the density F1 (None: not measured)."""
    if select in ("f1_density", "f1_mean", "f1_fields"):
        key = f"val_{select}"
        return -row[key] if row.get(key) is not None else None
    return row.get("val_loss", row["train_loss"])


def _validations_since_best(rows: list[dict], select: str) -> int:
    """How many validations (rows with a score) came after the best one: the patience count,
    computed from the metrics alone so that a resumed run counts the same."""
    scores = [sc for r in rows if (sc := _score(r, select)) is not None]
    if not scores:
        return 0
    return len(scores) - 1 - int(np.argmin(scores))


def _checkpoint_meta(cfg: Config, row: dict, desc: dict, minutes: dict, detection: dict | None) -> dict:
    """What best.pt records: the spacing and interpolation training really used, the protocol,
    the config, the epoch's validation numbers, the minutes of training per device type, and the
    density-F1 threshold when detection validation picked it."""
    d = cfg.data
    meta = {
        "mpp": d.model_mpp,
        "interpolation": d.interpolation,
        "training_spacing": "resampled to mpp from each source's known spacing"
        if d.resample
        else "native pixels of every source (not resampled)",
        "augmentation": cfg.augment.protocol,
        "mode": cfg.train.mode,
        "config": cfg.model_dump(mode="json"),
        "epoch": row["epoch"],
        "val": {
            k: row.get(k)
            for k in ("val_loss", "val_f1", "val_auc", "val_f1_density", "val_sensitivity", "val_fp_per_mm2")
        },
        "data": desc,
        "training_minutes": {k: round(v, 2) for k, v in minutes.items()},
    }
    if detection is not None:
        meta["threshold"] = detection["threshold"]
        meta["calibration"] = {
            "rule": f"max F1 at {cfg.val.density} mitoses/mm² (validation)",
            **{k: v for k, v in detection.items() if k != "threshold"},
        }
    return meta


def _optimizer(net: torch.nn.Module, cfg: Config):
    """SGD with momentum and the cosine cyclic learning rate of the paper (per step)."""
    o = cfg.optim
    opt = torch.optim.SGD(
        net.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=o.cycle_epochs * cfg.train.steps_per_epoch, T_mult=o.cycle_mult, eta_min=o.lr_min
    )
    return opt, sched


def _resume(run_dir: Path, cfg: Config, net, opt, sched, sampler, minutes: dict) -> tuple[int, float, list[dict]]:
    """Load last.pt into the model, optimiser, schedule and sampler; (epoch, best, metrics rows)."""
    state = load_state(run_dir)
    try:
        net.load_state_dict(state["model"])
    except RuntimeError:
        raise MitodetError(
            run_dir / "last.pt", f"does not fit a {cfg.model.name!r} model: model.* cannot change on --resume"
        ) from None
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"], sampler.gen)
    minutes.update(state.get("minutes", {}))
    return state["epoch"], state["best_val_loss"], state["metrics"]


def _validate_detection(net, items, cfg: Config, device, row: dict, progress) -> dict:
    """Detection on the validation images (fields, crops): its numbers into ``row``."""
    rule = cfg.val.select if cfg.val.select in ("f1_mean", "f1_fields") else "f1_density"
    detection = validate_detection(
        net, items, cfg.data.model_mpp, cfg.data.interpolation, cfg.val.density, device, rule, progress
    )
    row.update(
        val_f1_density=detection["f1_density"],
        val_sensitivity=detection["sensitivity"],
        val_fp_per_mm2=detection["fp_per_mm2"],
        val_threshold=detection["threshold"],
        val_f1_fields=detection.get("f1_fields"),
        val_f1_mean=detection.get("f1_mean"),
    )
    return detection


def _end_epoch(
    run_dir: Path, cfg: Config, net, opt, sched, sampler, rows: list[dict], best: float, minutes: dict, desc, detection
) -> float:
    """The end of an epoch (its row is ``rows[-1]``): best.pt where the selection score improved,
    metrics.csv, last.pt (the resumable state), loss.png and the log line. Returns the best score."""
    row = rows[-1]
    score = _score(row, cfg.val.select)
    if score is not None and score < best:
        best = score
        save_checkpoint(run_dir / "best.pt", net, **_checkpoint_meta(cfg, row, desc, minutes, detection))
    write_metrics(run_dir, rows)
    save_state(run_dir, net, opt, sched, sampler.gen, row["epoch"], best, rows, minutes=minutes)
    plot_losses(run_dir / "loss.png", rows, cfg.name)
    log.info(_epoch_line(row))
    return best


def train(
    cfg: Config,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    max_minutes: float | None = None,
    on_step: StepCallback | None = None,
    on_image: Callable[[int, int], None] | None = None,
    on_epoch: EpochCallback | None = None,
    on_val: ValCallback | None = None,
) -> Summary:
    """Train (or resume) one run; returns its :class:`Summary`.

    Progress goes to ``on_image(done, total)`` (data loading), ``on_epoch(epoch, epochs)`` as
    each epoch starts (1-based, counted from the run's first epoch when resuming),
    ``on_step(step, steps, loss, samples/s)`` within the epoch, and ``on_val(what, done, total)``
    while the epoch is validated (``what``: "windows", then "detection" where the config asks
    for it); one INFO log record per epoch.
    Long because it is the wiring of a training run; every step is a helper of this module.
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
    if main:
        mark_training(run_dir)  # mine hard refuses a run that is still training
    try:  # the marker goes with the run, on Ctrl-C / SIGTERM too
        desc = {
            "train": train_pool.describe(),
            "val": val_pool.describe(),
            "train_images": len(split.train_ids),
            "val_images": len(split.val_ids),
        }
        train_pool, val_pool = train_pool.to(device), val_pool.to(device)
        sampler: BatchSampler | DenseSampler
        if cfg.train.mode == "dense":
            sampler = DenseSampler(train_pool, cfg, net, rank=dist_info.rank)
        else:
            sampler = BatchSampler(train_pool, cfg, rf, rank=dist_info.rank)
        val_x, val_y = fixed_patches(val_pool, rf, cfg.val.negatives, cfg.seed) if val_pool.ids else (None, None)

        net.to(device)
        model: torch.nn.Module = net
        if dist_info.world > 1:
            model = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
        fwd = torch.compile(model) if cfg.train.compile else model
        steps = cfg.train.steps_per_epoch
        opt, sched = _optimizer(net, cfg)
        start, best, rows = 0, float("inf"), []
        minutes = {"cpu": 0.0, "cuda": 0.0}
        if resume:
            start, best, rows = _resume(run_dir, cfg, net, opt, sched, sampler, minutes)
        if main:  # only now: a resumed run whose --set does not fit its state fails above, config.yaml untouched
            write_run_files(run_dir, cfg, split, desc)
        items = detection_items(validation_images(split), cfg.val.tissue) if main and cfg.val.detect else []

        budget = max_minutes * 60.0 if max_minutes is not None else cfg.train.time_budget_s
        bf16 = cfg.train.amp == "bf16"
        t_run = time.perf_counter()
        epoch_times: list[float] = []
        stopped = False
        for epoch in range(start, cfg.train.epochs):
            if cfg.val.patience and _validations_since_best(rows, cfg.val.select) >= cfg.val.patience:
                stopped = True  # a resumed run that had already run out of patience
                break
            t_epoch = time.perf_counter()
            if main and on_epoch is not None:
                on_epoch(epoch + 1, cfg.train.epochs)
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
            stop = False
            if main:
                if val_x is not None and val_x.shape[0]:
                    row.update(evaluate(net, val_x, val_y, rf, cfg.val.batch_size, bf16, _stage(on_val, "windows")))
                detection = None
                # the last epoch is always validated: the final one, or the one the time budget will end on
                this = time.perf_counter() - t_epoch
                last = epoch + 1 == cfg.train.epochs or (
                    budget is not None and time.perf_counter() - t_run + float(np.mean([*epoch_times, this])) > budget
                )
                if items and ((epoch + 1) % cfg.val.every == 0 or last):
                    detection = _validate_detection(net, items, cfg, device, row, _stage(on_val, "detection"))
                    append_validation(run_dir, epoch + 1, detection)
                rows.append(row)
                minutes[device.type] = minutes.get(device.type, 0.0) + (time.perf_counter() - t_epoch) / 60.0
                best = _end_epoch(run_dir, cfg, net, opt, sched, sampler, rows, best, minutes, desc, detection)
            epoch_times.append(time.perf_counter() - t_epoch)
            if main:
                elapsed = time.perf_counter() - t_run
                stop = (
                    budget is not None
                    and elapsed + float(np.mean(epoch_times)) > budget
                    and epoch + 1 < cfg.train.epochs
                )
                patience = cfg.val.patience
                if patience and _validations_since_best(rows, cfg.val.select) >= patience:
                    log.info(f"stopping: no better validation in the last {patience} validations (val.patience)")
                    write_text(
                        run_dir / "patience-exhausted", f"epoch {epoch + 1}: no better validation in {patience}\n"
                    )
                    stop = True
            if broadcast_flag(stop, dist_info, device):
                stopped = True
                break
        barrier(dist_info)
    finally:
        if main:
            unmark_training(run_dir)
    scored = [r for r in rows if _score(r, cfg.val.select) is not None and "val_loss" in r]
    b = min(scored, key=lambda r: _score(r, cfg.val.select)) if scored else None
    return Summary(
        run_dir,
        len(rows),
        b["epoch"] if b else None,
        b["val_loss"] if b else None,
        b["val_f1"] if b else None,
        stopped,
        b.get("val_f1_density") if b else None,
    )
