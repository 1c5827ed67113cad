"""Calibrating a run: the paper's pooled-F1 rule and the F1 at a realistic mitosis density."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mitodet.cli.main import app
from mitodet.evaluate.density import density_f1
from mitodet.model import load_checkpoint
from mitodet.train.config import config_from_dict
from mitodet.train.run import train
from tests.conftest import need
from tests.train.conftest import tiny_raw


def test_density_rule_stores_threshold_and_groups(shared_data, small_crops, tmp_path):
    tile = need(shared_data / "tissue/monuseg/TCGA-49-4488-01Z-00-DX1.tif")
    raw = tiny_raw(
        small_crops,
        train={"epochs": 1, "steps_per_epoch": 3},
        val={"negatives": 200, "detect": True, "select": "f1_density", "tissue": [str(tile)]},
    )
    s = train(config_from_dict(raw), tmp_path / "run")
    _, meta = load_checkpoint(s.run_dir / "best.pt")
    assert meta["calibration"]["rule"].startswith("max F1 at 11.1") and 0 < meta["threshold"] <= 1
    r = CliRunner().invoke(app, ["calibrate", str(s.run_dir), "--limit", "20"])
    assert r.exit_code == 0, r.output
    doc = json.loads((s.run_dir / "calibration.json").read_text())
    assert doc["rule"] == "f1_density" and "tissue" in doc["groups"]
    assert abs(doc["f1_density"] - density_f1(doc["sensitivity"], doc["fp_per_mm2"], 11.1)) < 1e-9
    _, meta = load_checkpoint(s.run_dir / "best.pt")
    assert meta["threshold"] == doc["threshold"] and meta["calibration"]["rule"] == "f1_density"
    assert "F1 at density" in r.output and "stored threshold" in r.output
    r = CliRunner().invoke(app, ["calibrate", str(s.run_dir), "--rule", "pooled_f1", "--limit", "20", "--dry-run"])
    assert r.exit_code == 0 and "max pooled F1" in r.output
    r = CliRunner().invoke(app, ["calibrate", str(s.run_dir), "--rule", "banana"])
    assert r.exit_code != 0 and "banana" in str(r.exception)


def test_density_f1_formula():
    assert density_f1(1.0, 0.0) == 1.0 and density_f1(0.0, 5.0) == 0.0
    assert abs(density_f1(0.8, 2.0, 11.1) - 2 * 11.1 * 0.8 / (2 * 11.1 * 0.8 + 11.1 * 0.2 + 2.0)) < 1e-12
