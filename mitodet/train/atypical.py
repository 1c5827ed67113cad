"""Training of the atypical-vs-normal classifier: class-balanced batches of augmented crops,
cross-entropy, SGD with momentum and a cosine cyclic learning rate; ``best.pt`` is the epoch of
the best validation balanced accuracy (the mean over sources, so AtNorM-MD weighs as much as
MIDOG 2021), with its threshold chosen on validation for that balanced accuracy.

A run folder holds ``config.yaml``, ``split.json``, ``metrics.csv`` (one row per epoch),
``validation.csv`` (the best epoch's validation probabilities), ``best.pt`` and ``last.pt``
(the resume state); all written atomically at the end of every epoch.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mitodet.augment.transforms import augment, sample_params
from mitodet.classify.data import CropSet, labelled_crop_records, read_crops, split_crops
from mitodet.classify.metrics import best_threshold, scores
from mitodet.classify.predict import predict_windows, to_tensor
from mitodet.data.split import write_split
from mitodet.errors import MitodetError
from mitodet.io.atomic import write_csv, write_text
from mitodet.model import create_model
from mitodet.model.checkpoint import load_checkpoint, save_checkpoint
from mitodet.train.atypical_config import AtypicalConfig, dump_atypical_config
from mitodet.train.device import pick_device
from mitodet.train.engine import EpochCallback, StepCallback, ValCallback, train_one_epoch
from mitodet.train.rundir import load_state, save_state, set_rng_state

METRICS = ["epoch", "lr", "train_loss", "val_loss", "val_ba", "val_auroc", "threshold", "seconds"]


class BalancedCrops:
    """Class-balanced augmented batches: half atypical, half normal, drawn with replacement;
    a random shift of up to ``augment.shift`` px, then the detector's augmentation protocol."""

    def __init__(self, crops: CropSet, cfg: AtypicalConfig, gen: torch.Generator, device: torch.device):
        if crops.atypical.all() or not crops.atypical.any():
            raise MitodetError(None, "training needs both atypical and normal crops")
        self.windows = to_tensor(crops.windows)
        self.pos = torch.from_numpy(np.flatnonzero(crops.atypical))
        self.neg = torch.from_numpy(np.flatnonzero(~crops.atypical))
        self.cfg, self.gen, self.device = cfg, gen, device
        self.batch = cfg.train.batch_size

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.batch // 2
        idx = torch.cat(
            [
                self.pos[torch.randint(len(self.pos), (half,), generator=self.gen)],
                self.neg[torch.randint(len(self.neg), (self.batch - half,), generator=self.gen)],
            ]
        )
        target = torch.cat([torch.ones(half), torch.zeros(self.batch - half)]).long()
        shift, side = self.cfg.augment.shift, self.cfg.data.window
        sub = side - 2 * shift
        off = torch.randint(0, 2 * shift + 1, (self.batch, 2), generator=self.gen)
        w = torch.stack(
            [self.windows[i, :, y : y + sub, x : x + sub] for i, (y, x) in zip(idx.tolist(), off.tolist(), strict=True)]
        )
        params = sample_params(self.batch, self.cfg.augment, self.gen)
        x = augment(w.to(self.device), params.to(self.device), self.cfg.augment, self.cfg.data.input)
        return x, target.to(self.device)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target)


def validate(model, val: CropSet, cfg: AtypicalConfig, on_batch: Callable[[int, int], None] | None = None) -> dict:
    """Validation loss, per-source balanced accuracy at the threshold that maximises their mean."""
    p = predict_windows(model, to_tensor(val.windows), cfg.data.input, cfg.train.tta, on_batch=on_batch)
    y = val.atypical
    q = np.clip(p, 1e-7, 1 - 1e-7)
    ce = -(y * np.log(q) + (~y) * np.log(1 - q))
    loss = float((ce[y].mean() + ce[~y].mean()) / 2)  # class-balanced
    t, ba = best_threshold(p, y, val.source)
    per = {
        s: scores(p[np.asarray(val.source) == s], y[np.asarray(val.source) == s], t) for s in sorted(set(val.source))
    }
    per.update(
        {
            d: scores(p[np.asarray(val.domain) == d], y[np.asarray(val.domain) == d], t)
            for d in sorted(set(val.domain) - set(per))
        }
    )
    return {"loss": loss, "threshold": t, "balanced_accuracy": ba, "pooled": scores(p, y, t), "per": per, "p": p}


def _init(cfg: AtypicalConfig) -> torch.nn.Module:
    net = create_model(cfg.model.name)
    if cfg.model.init:
        init, _ = load_checkpoint(cfg.model.init)
        try:
            net.load_state_dict(init.state_dict())
        except RuntimeError:
            raise MitodetError(cfg.model.init, f"model.init does not fit a {cfg.model.name!r} model") from None
        head = net.features[-1]  # the detector's mitosis logits mean nothing here: start at p = 0.5
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    return net


def _write_validation(run_dir: Path, val: CropSet, p: np.ndarray) -> None:
    rows = [
        {"id": i, "source": s, "domain": d, "atypical": bool(a), "atypical_probability": f"{q:.6f}"}
        for i, s, d, a, q in zip(val.ids, val.source, val.domain, val.atypical, p, strict=True)
    ]
    write_csv(run_dir / "validation.csv", ["id", "source", "domain", "atypical", "atypical_probability"], rows)


def train_atypical(
    cfg: AtypicalConfig,
    run_dir: Path,
    resume: bool = False,
    max_minutes: float | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    on_start: EpochCallback | None = None,
    on_step: StepCallback | None = None,
    on_val: ValCallback | None = None,
) -> dict:
    """Train (or resume) into ``run_dir`` -> the best epoch's validation summary.

    ``on_epoch(row)`` gets each finished epoch's metrics; ``on_start(epoch, epochs)``,
    ``on_step`` and ``on_val("crops", done, total)`` follow the epoch as in
    :func:`mitodet.train.run.train`.

    Long because it is the wiring of a training run, as train() is."""
    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    records = labelled_crop_records(cfg.data.crops, cfg.data.atnorm)
    train_ids, val_ids = split_crops(records, cfg.data.split_file, cfg.data.val_fraction, cfg.seed)
    crops = read_crops(records, cfg.data.window, cfg.data.model_mpp)
    tr, val = crops.subset(train_ids), crops.subset(val_ids)
    net = _init(cfg).to(device)
    if not net.valid_input_size(cfg.data.input):
        raise MitodetError("data.input", f"{cfg.data.input} px is not a valid input size of {cfg.model.name}")
    gen = torch.Generator().manual_seed(cfg.seed)
    sampler = BalancedCrops(tr, cfg, gen, device)
    steps = cfg.train.steps_per_epoch or max(1, len(tr) // cfg.train.batch_size)
    o = cfg.optim
    opt = torch.optim.SGD(
        net.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=o.cycle_epochs * steps, T_mult=o.cycle_mult, eta_min=o.lr_min
    )
    start, best, rows = 0, -1.0, []
    if resume:
        state = load_state(run_dir)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], gen)
        start, best, rows = int(state["epoch"]), float(state["best_val_loss"]), list(state["metrics"])
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", dump_atypical_config(cfg))
        write_split(run_dir / "split.json", train_ids, val_ids, rule="by group, stratified by source, scanner, label")
    t0 = time.perf_counter()
    budget = min(x for x in (cfg.train.time_budget_s, max_minutes and max_minutes * 60, float("inf")) if x)
    summary = (
        json.loads((run_dir / "validation.json").read_text())
        if resume and (run_dir / "validation.json").exists()
        else {}
    )
    for epoch in range(start, cfg.train.epochs):
        if on_start is not None:
            on_start(epoch + 1, cfg.train.epochs)
        r = train_one_epoch(net, sampler, opt, sched, device, steps, on_step=on_step)
        v = validate(net, val, cfg, None if on_val is None else functools.partial(on_val, "crops"))
        row = {
            "epoch": epoch + 1,
            "lr": f"{sched.get_last_lr()[0]:.6g}",
            "train_loss": f"{r['train_loss']:.5f}",
            "val_loss": f"{v['loss']:.5f}",
            "val_ba": f"{v['balanced_accuracy']:.4f}",
            "val_auroc": f"{v['pooled']['auroc']:.4f}",
            "threshold": f"{v['threshold']:.4f}",
            "seconds": f"{r['seconds']:.1f}",
        }
        rows.append(row)
        if v["balanced_accuracy"] > best:
            best = v["balanced_accuracy"]
            summary = {k: v[k] for k in ("loss", "threshold", "balanced_accuracy", "pooled", "per")}
            summary["epoch"] = epoch + 1
            save_checkpoint(
                run_dir / "best.pt",
                net,
                kind="atypical",
                mpp=cfg.data.model_mpp,
                threshold=v["threshold"],
                input=cfg.data.input,
                epoch=epoch + 1,
                validation=summary,
            )
            write_text(run_dir / "validation.json", json.dumps(summary, indent=1) + "\n")
            _write_validation(run_dir, val, v["p"])
        write_csv(run_dir / "metrics.csv", METRICS, rows)
        save_state(run_dir, net, opt, sched, gen, epoch + 1, best, rows)
        if on_epoch is not None:
            on_epoch({**row, "best": best})
        if time.perf_counter() - t0 > budget:
            break
    return summary
