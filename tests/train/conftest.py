"""Fixtures of the train tests: a small real crop set and a tiny config."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.conftest import need

N_PER_SCANNER = 40


def make_small_crops(shared: Path, dest: Path, n_per_scanner: int = N_PER_SCANNER) -> Path:
    """A midog21_crops-format folder with the first crops of each scanner (real PNGs copied)."""
    src = need(shared / "midog21_crops")
    rows = list(csv.DictReader(open(src / "crops.csv", newline="")))
    picked, seen = [], {}
    for r in rows:
        if seen.get(r["scanner"], 0) < n_per_scanner:
            seen[r["scanner"]] = seen.get(r["scanner"], 0) + 1
            picked.append(r)
    (dest / "images").mkdir(parents=True, exist_ok=True)
    files = {r["file"] for r in picked}
    for f in files:
        shutil.copy(src / f, dest / f)
    with open(dest / "crops.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(picked)
    labels = list(csv.DictReader(open(src / "labels_in_crops.csv", newline="")))
    with open(dest / "labels_in_crops.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(labels[0]))
        w.writeheader()
        w.writerows([r for r in labels if r["file"] in files])
    return dest


@pytest.fixture(scope="session")
def small_crops(shared_data, tmp_path_factory) -> Path:
    return make_small_crops(shared_data, tmp_path_factory.mktemp("crops"))


def tiny_raw(crops: Path, **over) -> dict:
    """A tiny training config (dict) on ``crops``; ``over`` replaces top-level sections."""
    raw = {
        "name": "t",
        "seed": 0,
        "device": "cpu",
        "model": {"name": "tiny"},
        "data": {"crops": str(crops), "crop_grid": 8, "border": 8},
        "split": {"val_fraction": 0.2, "seed": 0},
        "sampling": {"batch_size": 32},
        "augment": {"protocol": "ca-rgb", "shift": 4, "elastic": {"p": 0.5, "alpha": 1.5}},
        "optim": {"lr": 0.05, "cycle_epochs": 3},
        "train": {"epochs": 2, "steps_per_epoch": 8},
        "val": {"negatives": 200},
    }
    raw.update(over)
    return raw
