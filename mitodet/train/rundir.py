"""The run folder and everything written into it.

A run folder holds ``config.yaml`` (resolved, absolute paths), ``split.json``, ``data.json``
(pool description), ``metrics.csv`` (one row per epoch), ``loss.png``, ``best.pt`` (lowest
validation loss, a ``save_checkpoint`` file) and ``last.pt`` (the resume state). Everything is
written atomically at the end of every epoch, so Ctrl-C or a crash loses at most the current
epoch. ``last.pt`` holds only tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``: a run folder received from someone else cannot run code.
"""

from __future__ import annotations

import csv
import json
import os
import random
import socket
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from mitodet.data.split import read_split, write_split
from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_path, write_csv, write_text
from mitodet.model.checkpoint import safe_load
from mitodet.train.config import Config, config_from_dict, dump_config
from mitodet.train.data import SplitData, ValImage, labelled_records, validation_images

METRIC_FIELDS = [
    "epoch",
    "steps",
    "lr",
    "train_loss",
    "val_loss",
    "val_f1",
    "val_auc",
    "val_precision",
    "val_recall",
    "val_f1_density",
    "val_sensitivity",
    "val_fp_per_mm2",
    "val_threshold",
    "val_f1_fields",
    "val_f1_mean",
    "patches_per_s",
    "seconds",
]
STATE_FORMAT = "mitodet-train-state/1"


def new_run_dir(cfg: Config) -> Path:
    """``<out>/<name>-<timestamp>`` (suffixed when it exists)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.out) / f"{cfg.name}-{stamp}"
    p, i = base, 1
    while p.exists():
        p, i = Path(f"{base}-{i}"), i + 1
    return p


def read_run_config(run_dir: str | os.PathLike) -> Config:
    """The resolved config of a run folder."""
    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        raise MitodetError(run_dir, "not a run folder (no config.yaml)")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise MitodetError(p, f"not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise MitodetError(p, "expected a mapping of settings at the top level")
    return config_from_dict(raw, str(p), check_paths=False)


def write_run_files(run_dir: Path, cfg: Config, split: SplitData, desc: dict) -> None:
    """config.yaml, split.json and data.json of a run that starts."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.yaml", dump_config(cfg))
    write_split(run_dir / "split.json", split.train_ids, split.val_ids)
    write_text(run_dir / "data.json", json.dumps(desc, indent=1))


def load_split(run_dir: str | os.PathLike, cfg: Config) -> SplitData:
    """Records and split of a run (from its split.json)."""
    p = Path(run_dir) / "split.json"
    if not p.is_file():
        raise MitodetError(run_dir, "run folder has no split.json")
    return SplitData(labelled_records(cfg), *read_split(p))


def load_validation_set(run_dir: str | os.PathLike) -> list[ValImage]:
    """The validation images of a run: objects with ``.id .image .mpp .points .domain``."""
    return validation_images(load_split(run_dir, read_run_config(run_dir)))


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    write_csv(run_dir / "metrics.csv", METRIC_FIELDS, [{k: r.get(k, "") for k in METRIC_FIELDS} for r in rows])


def append_validation(run_dir: Path, epoch: int, detection: dict) -> None:
    """Add an epoch's detection validation (threshold, s, f, F1 at density, per group) to
    ``validation.json`` (a list, rewritten atomically)."""
    path = run_dir / "validation.json"
    doc = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    doc = [d for d in doc if d.get("epoch") != epoch] + [{"epoch": epoch, **detection}]
    write_text(path, json.dumps(doc, indent=1, default=float) + "\n")


def read_metrics(run_dir: Path) -> list[dict]:
    """Rows of ``metrics.csv`` (strings)."""
    with open(Path(run_dir) / "metrics.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def plot_losses(path: Path, rows: list[dict], title: str = "") -> None:
    import matplotlib  # imported here: 0.5 s that only runs which plot should pay

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, [r["train_loss"] for r in rows], "o-", label="train loss")
    if any(r.get("val_loss") not in (None, "") for r in rows):
        ax.plot(ep, [r.get("val_loss") for r in rows], "s-", label="val loss (class-balanced)")
        ax2 = ax.twinx()
        ax2.plot(ep, [r.get("val_f1") for r in rows], "^--", color="tab:green", label="val patch F1")
        # the detection scores that choose best.pt, at the epochs that measured them
        for key, label, color in (
            ("val_f1_density", "F1 at density", "tab:purple"),
            ("val_f1_fields", "fields F1 (official)", "tab:red"),
        ):
            pts = [(r["epoch"], float(r[key])) for r in rows if r.get(key) not in (None, "")]
            if pts:
                ax2.plot(*zip(*pts, strict=True), "D-", color=color, label=label)
        ax2.set_ylabel("F1")
        ax2.set_ylim(0, 1)
        ax2.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.legend(loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


# -- the "still training" marker ------------------------------------------------------------
LOCK = "training.lock"


def mark_training(run_dir: Path) -> None:
    """``training.lock``: this host and process are training in ``run_dir`` (see :func:`training_pid`)."""
    write_text(Path(run_dir) / LOCK, json.dumps({"host": socket.gethostname(), "pid": os.getpid()}) + "\n")


def unmark_training(run_dir: Path) -> None:
    (Path(run_dir) / LOCK).unlink(missing_ok=True)


def training_pid(run_dir: str | os.PathLike) -> int | None:
    """The PID of a process of this host still training in ``run_dir`` (None: none; a marker
    left by a crash or by another machine does not count)."""
    try:
        doc = json.loads((Path(run_dir) / LOCK).read_text())
        pid = int(doc["pid"])
        if doc.get("host") != socket.gethostname() or pid == os.getpid():
            return None
        os.kill(pid, 0)  # signal 0: does the process exist?
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid


# -- resume state (weights_only-loadable) ---------------------------------------------------
def rng_state(sampler_gen: torch.Generator) -> dict:
    """Every RNG a run draws from, as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_py = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "sampler": sampler_gen.get_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss": gauss_py},
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(s: dict, sampler_gen: torch.Generator) -> None:
    torch.set_rng_state(s["torch"])
    sampler_gen.set_state(s["sampler"])
    n = s["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = s["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if s.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_state(
    run_dir: Path, model, opt, sched, sampler_gen: torch.Generator, epoch: int, best: float, rows: list[dict], **extra
) -> None:
    """``last.pt``: model, optimiser, scheduler, RNG states, epoch, metrics (atomically)."""
    state = {
        "format": STATE_FORMAT,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": rng_state(sampler_gen),
        "epoch": epoch,
        "best_val_loss": float(best),
        "metrics": rows,
        **extra,
    }
    with atomic_path(run_dir / "last.pt") as tmp:
        torch.save(state, tmp)


def load_state(run_dir: Path) -> dict:
    """Read ``last.pt`` without running any code from it (weights_only)."""
    path = Path(run_dir) / "last.pt"
    if not path.is_file():
        raise MitodetError(run_dir, "nothing to resume (no last.pt)")
    state = safe_load(path, "training state")  # weights only: no code runs from the file
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise MitodetError(path, f"not a mitodet training state (expected format {STATE_FORMAT})")
    return state
