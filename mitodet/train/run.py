"""One training run as in the paper: balanced batches, SGD + momentum, cosine cyclic LR.

A run folder holds ``config.yaml`` (resolved, absolute paths), ``split.json``,
``data.json`` (pool description), ``metrics.csv`` (one row per epoch), ``loss.png``,
``best.pt`` (lowest validation loss, a ``save_checkpoint`` file) and ``last.pt`` (full
resume state: model, optimiser, scheduler, RNG states, epoch, metrics). Everything is
written atomically at the end of every epoch, so Ctrl-C or a crash loses at most the
current epoch and ``--resume`` continues bit-exactly (on CPU) where it stopped.

Distributed: under ``torchrun`` (WORLD_SIZE > 1) each rank samples its own batches and
gradients are averaged by DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0
validates and writes.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mitodet.data.split import read_split, write_split
from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_open, atomic_path, write_text
from mitodet.train.config import Config, config_from_dict, dump_config
from mitodet.train.data import labelled_records, split_records, train_val_images, validation_images
from mitodet.train.patches import build_pool
from mitodet.train.sampler import BatchSampler, as_input, fixed_patches

METRIC_FIELDS = ["epoch", "steps", "lr", "train_loss", "val_loss", "val_f1", "val_auc", "val_precision",
                 "val_recall", "patches_per_s", "seconds"]
console = Console(stderr=True)


# ----------------------------------------------------------------------------- setup
def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise MitodetError("device", "cuda requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_dist(device_name: str) -> tuple[Dist, torch.device]:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), pick_device(device_name)
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local), device


def resolve_paths(cfg: Config) -> Config:
    """The config with every data path made absolute (a run folder works from any cwd)."""
    raw = cfg.model_dump(mode="json")
    d = raw["data"]
    ab = lambda p: None if p is None else str(Path(p).resolve())  # noqa: E731
    for k in ("crops", "annotations", "images_dir", "keep_negatives"):
        d[k] = ab(d[k])
    d["tissue"] = [ab(p) for p in d["tissue"]]
    d["negatives"] = [ab(p) for p in d["negatives"]]
    raw["split"]["file"] = ab(raw["split"]["file"])
    raw["model"]["init"] = ab(raw["model"]["init"])
    raw["out"] = ab(raw["out"])
    return config_from_dict(raw, "config", check_paths=False)


def new_run_dir(cfg: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.out) / f"{cfg.name}-{stamp}"
    p, i = base, 1
    while p.exists():
        p, i = Path(f"{base}-{i}"), i + 1
    return p


def read_run_config(run_dir: str | os.PathLike) -> Config:
    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        raise MitodetError(run_dir, "not a run folder (no config.yaml)")
    import yaml

    return config_from_dict(yaml.safe_load(p.read_text(encoding="utf-8")), str(p), check_paths=False)


def load_split(run_dir, cfg: Config):
    """Records and split of a run (from its split.json)."""
    from mitodet.train.data import SplitData

    records = labelled_records(cfg)
    p = Path(run_dir) / "split.json"
    if not p.is_file():
        raise MitodetError(run_dir, "run folder has no split.json")
    return SplitData(records, *read_split(p))


def load_validation_set(run_dir: str | os.PathLike) -> list:
    """The validation images of a run: objects with ``.id .image .mpp .points .domain``."""
    cfg = read_run_config(run_dir)
    return validation_images(load_split(run_dir, cfg))


# ----------------------------------------------------------------------------- metrics
def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged."""
    from scipy.stats import rankdata

    n1, n0 = int(labels.sum()), int((1 - labels).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def logits_center(out: torch.Tensor) -> torch.Tensor:
    """[B,2,h,w] -> [B,2] at the centre cell (1x1 for an rf x rf input)."""
    return out[:, :, out.shape[2] // 2, out.shape[3] // 2]


@torch.no_grad()
def score_windows(model, windows: torch.Tensor, rf: int, batch: int, amp: bool) -> torch.Tensor:
    """Mitosis probability of each uint8 window (centre rf x rf, no augmentation), float32 CPU."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, windows.shape[0], batch):
        x = as_input(windows[i : i + batch], rf)
        with _autocast(windows.device, amp):
            logit = logits_center(model(x)).float()
        out.append(torch.softmax(logit, 1)[:, 1].cpu())
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0)


def evaluate_patches(model, windows, labels, rf: int, batch: int, amp: bool = False) -> dict:
    """Class-balanced CE loss, patch F1/precision/recall at 0.5, AUC."""
    p = score_windows(model, windows, rf, batch, amp).double().clamp(1e-7, 1 - 1e-7)
    y = labels.cpu()
    ce = -(y * p.log() + (1 - y) * (1 - p).log())
    pos, neg = ce[y == 1], ce[y == 0]
    loss = 0.5 * (pos.mean() + neg.mean()) if len(pos) and len(neg) else ce.mean()
    pred = p >= 0.5
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    return {"val_loss": float(loss), "val_f1": 2 * tp / max(1, 2 * tp + fp + fn),
            "val_precision": tp / max(1, tp + fp), "val_recall": tp / max(1, tp + fn),
            "val_auc": auc(p.numpy(), y.numpy())}


def _autocast(device: torch.device, bf16: bool):
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    with atomic_open(run_dir / "metrics.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=METRIC_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in METRIC_FIELDS})


def plot_losses(path: Path, rows: list[dict], title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, [r["train_loss"] for r in rows], "o-", label="train loss")
    if any(r.get("val_loss") not in (None, "") for r in rows):
        ax.plot(ep, [r.get("val_loss") for r in rows], "s-", label="val loss (class-balanced)")
        ax2 = ax.twinx()
        ax2.plot(ep, [r.get("val_f1") for r in rows], "^--", color="tab:green", label="val F1")
        ax2.set_ylabel("val patch F1")
        ax2.set_ylim(0, 1)
        ax2.legend(loc="upper right")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- state
def _rng_state(sampler: BatchSampler) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "sampler": sampler.gen.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(s: dict, sampler: BatchSampler) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    sampler.gen.set_state(s["sampler"])
    if s.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def _save_last(run_dir: Path, net, opt, sched, sampler, epoch: int, best: float, rows: list[dict]) -> None:
    state = {"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "rng": _rng_state(sampler), "epoch": epoch, "best_val_loss": best, "metrics": rows}
    with atomic_path(run_dir / "last.pt") as tmp:
        torch.save(state, tmp)


# ----------------------------------------------------------------------------- the run
@dataclass
class Summary:
    run_dir: Path
    epochs: int
    best_epoch: int | None
    best_val_loss: float | None
    best_val_f1: float | None
    stopped_early: bool


def prepare_data(cfg: Config, run_dir: Path | None, resume: bool, quiet: bool):
    """Records, split (created or read back), pools."""
    records = labelled_records(cfg)
    if resume and run_dir is not None and (run_dir / "split.json").is_file():
        from mitodet.train.data import SplitData

        split = SplitData(records, *read_split(run_dir / "split.json"))
    else:
        split = split_records(cfg, records)
    train_imgs, val_imgs = train_val_images(cfg, split, quiet=quiet)
    return split, build_pool(train_imgs), build_pool(val_imgs)


def train(cfg: Config, run_dir: str | os.PathLike | None = None, resume: bool = False,
          quiet: bool = False, max_minutes: float | None = None) -> Summary:
    """Train (or resume) one run; returns its :class:`Summary`."""
    dist_info, device = init_dist(cfg.device)
    if not resume:
        cfg = resolve_paths(cfg)
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(cfg)
    quiet = quiet or not dist_info.main
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)

    from mitodet.model import create_model, save_checkpoint

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    net = create_model(cfg.model.name)  # fails on an unknown name before data loading
    rf = int(net.receptive_field)
    if cfg.model.init and not resume:
        from mitodet.model import load_checkpoint

        init, _ = load_checkpoint(cfg.model.init)
        if init.config != net.config:
            raise MitodetError(cfg.model.init, f"model.init is a {init.config} model, the config asks for {net.config}")
        net.load_state_dict(init.state_dict())
    split, train_pool, val_pool = prepare_data(cfg, run_dir, resume, quiet)
    desc = {"train": train_pool.describe(), "val": val_pool.describe(), "train_images": len(split.train_ids),
            "val_images": len(split.val_ids)}
    if dist_info.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", dump_config(cfg))
        write_split(run_dir / "split.json", split.train_ids, split.val_ids)
        write_text(run_dir / "data.json", json.dumps(desc, indent=1))
    train_pool, val_pool = train_pool.to(device), val_pool.to(device)
    sampler = BatchSampler(train_pool, cfg, rf, rank=dist_info.rank)
    val_x, val_y = fixed_patches(val_pool, rf, cfg.val.negatives, cfg.seed) if val_pool.ids else (None, None)

    net.to(device)
    model = net
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    fwd = torch.compile(model) if cfg.train.compile else model
    o = cfg.optim
    opt = torch.optim.SGD(net.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                          weight_decay=o.weight_decay)
    steps = cfg.train.steps_per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=o.cycle_epochs * steps,
                                                                 T_mult=o.cycle_mult, eta_min=o.lr_min)
    start, best, rows = 0, float("inf"), []
    if resume:
        last = run_dir / "last.pt"
        if not last.is_file():
            raise MitodetError(run_dir, "nothing to resume (no last.pt)")
        state = torch.load(last, map_location="cpu", weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"], sampler)
        start, best, rows = state["epoch"], state["best_val_loss"], state["metrics"]

    budget = cfg.train.time_budget_s
    if max_minutes is not None:
        budget = max_minutes * 60.0
    bf16 = cfg.train.amp == "bf16"
    t_run = time.perf_counter()
    epoch_times: list[float] = []
    stopped = False
    columns = [TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}  {task.fields[speed]:.0f} patches/s"), TimeElapsedColumn()]
    for epoch in range(start, cfg.train.epochs):
        sampler.reseed(epoch)
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        shown = float("nan")
        with Progress(*columns, console=console, disable=quiet, transient=True) as prog:
            task = prog.add_task("train", total=steps, epoch=f"{epoch + 1}/{cfg.train.epochs}", loss=float("nan"), speed=0.0)
            for step in range(steps):
                x, y = sampler.sample()
                with _autocast(device, bf16):
                    out = logits_center(fwd(x))
                loss = F.cross_entropy(out.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach()
                if (step + 1) % cfg.train.log_every == 0 or step + 1 == steps:
                    shown = float(loss_sum) / (step + 1)
                    rate = (step + 1) * sampler.batch * dist_info.world / (time.perf_counter() - t0)
                    prog.update(task, completed=step + 1, loss=shown, speed=rate)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        epoch_times.append(seconds)
        row = {"epoch": epoch + 1, "steps": (epoch + 1) * steps, "lr": opt.param_groups[0]["lr"],
               "train_loss": float(loss_sum) / steps,
               "patches_per_s": steps * sampler.batch * dist_info.world / seconds, "seconds": seconds}
        stop_flag = torch.zeros(1)
        if dist_info.main:
            if val_x is not None and val_x.shape[0]:
                row.update(evaluate_patches(net, val_x, val_y, rf, cfg.val.batch_size, bf16))
            rows.append(row)
            vl = row.get("val_loss", row["train_loss"])
            if vl < best:
                best = vl
                save_checkpoint(run_dir / "best.pt", net, mpp=0.25, augmentation=cfg.augment.protocol,
                                config=cfg.model_dump(mode="json"), epoch=epoch + 1,
                                val={k: row.get(k) for k in ("val_loss", "val_f1", "val_auc")}, data=desc)
            write_metrics(run_dir, rows)
            _save_last(run_dir, net, opt, sched, sampler, epoch + 1, best, rows)
            plot_losses(run_dir / "loss.png", rows, cfg.name)
            if not quiet:
                console.print(f"epoch {epoch + 1}: train loss {row['train_loss']:.4f}"
                              + (f"  val loss {row['val_loss']:.4f}  F1 {row['val_f1']:.3f}  AUC {row['val_auc']:.3f}"
                                 if "val_loss" in row else "")
                              + f"  {row['patches_per_s']:.0f} patches/s")
            elapsed = time.perf_counter() - t_run
            if budget is not None and elapsed + float(np.mean(epoch_times)) > budget and epoch + 1 < cfg.train.epochs:
                stop_flag[0] = 1
        if dist_info.world > 1:
            import torch.distributed as dist

            flag = stop_flag.to(device) if device.type == "cuda" else stop_flag
            dist.broadcast(flag, 0)
            stop_flag = flag.cpu()
        if stop_flag[0]:
            stopped = True
            break
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.barrier()
    with_val = [r for r in rows if "val_loss" in r]
    b = min(with_val, key=lambda r: r["val_loss"]) if with_val else None
    return Summary(run_dir, len(rows), b["epoch"] if b else None, b["val_loss"] if b else None,
                   b["val_f1"] if b else None, stopped)
