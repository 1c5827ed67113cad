"""Calibrating a run: the paper's pooled-F1 rule and the F1 at a realistic mitosis density."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from mitodet.cli.main import app
from mitodet.evaluate.density import best_density_threshold, density_f1, density_scores
from mitodet.model import load_checkpoint
from mitodet.train.calibrate import default_rule, pair_search
from mitodet.train.config import config_from_dict
from mitodet.train.run import train
from mitodet.train.validate import fields_f1
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
    # the pair: both thresholds chosen together for their ensemble, stored in both checkpoints
    other = tmp_path / "other"
    shutil.copytree(s.run_dir, other)
    r = CliRunner().invoke(app, ["calibrate", str(s.run_dir), "--pair", str(other)])
    assert r.exit_code == 0, r.output
    doc = json.loads((s.run_dir / "calibration.json").read_text())
    assert doc["rule"] == "f1_density_pair" and doc["threshold"] == doc["threshold_a"]
    for run, key in ((s.run_dir, "threshold_a"), (other, "threshold_b")):
        _, meta = load_checkpoint(run / "best.pt")
        assert meta["threshold"] == doc[key] and meta["calibration"]["rule"] == "f1_density_pair"
    assert r.output.count("stored threshold") == 2
    split = json.loads((other / "split.json").read_text())
    split["train"], split["val"] = split["train"][1:], [split["train"][0], *split["val"]]
    (other / "split.json").write_text(json.dumps(split))
    r = CliRunner().invoke(app, ["calibrate", str(s.run_dir), "--pair", str(other)])
    assert r.exit_code != 0 and "another validation split" in str(r.exception)


def _points(rows):
    return {k: [tuple(p) for p in v] for k, v in rows.items()}


def test_pair_search_finds_lower_thresholds_for_the_ensemble():
    """Each model alone raises its own false detections at high probability; only the true
    figures are called by both. The ensemble's thresholds go below each model's own best."""
    truth = {"a": [(10.0, 10.0), (50.0, 50.0)], "b": [(20.0, 80.0)], "t": []}
    pa = {"a": [(10, 10, 0.90), (50, 51, 0.80), (80, 20, 0.99)], "b": [(20, 81, 0.85)], "t": [(5, 5, 0.995)]}
    pb = {"a": [(11, 10, 0.70), (50, 50, 0.75), (30, 30, 0.98)], "b": [(21, 80, 0.72)], "t": [(90, 90, 0.97)]}
    area = {"a": 0.01, "b": 0.01, "t": 0.05}
    single_a = best_density_threshold(truth, _points(pa), area, 7.5)
    single_b = best_density_threshold(truth, _points(pb), area, 7.5)
    pair = pair_search(truth, _points(pa), _points(pb), area, steps=12)
    assert pair["f1_density"] > max(single_a["f1_density"], single_b["f1_density"])
    assert pair["sensitivity"] == 1.0 and pair["fp"] == 0
    assert pair["threshold_a"] <= 0.80 and pair["threshold_b"] <= 0.70


def test_images_without_area_count_for_sensitivity_only():
    """AtNorM-MD crops are labelled at their centre only: an unmatched detection there is not false."""
    truth = {"crop": [(0.0, 0.0)], "tile": []}
    pred = {"crop": [(0.0, 0.0, 0.9), (30.0, 30.0, 0.9)], "tile": [(1.0, 1.0, 0.9)]}
    sc = density_scores(truth, pred, {"crop": 0.0, "tile": 0.5}, 7.5, 0.5)
    assert (sc["tp"], sc["fn"], sc["fp"]) == (1, 0, 1) and sc["fp_per_mm2"] == 2.0


def test_density_f1_formula():
    assert density_f1(1.0, 0.0) == 1.0 and density_f1(0.0, 5.0) == 0.0
    assert abs(density_f1(0.8, 2.0, 11.1) - 2 * 11.1 * 0.8 / (2 * 11.1 * 0.8 + 11.1 * 0.2 + 2.0)) < 1e-12


def test_validation_measures_tissue_as_detect_does(shared_data, tmp_path):
    """#18: one tissue-area rule: the area behind validation's and calibration's counts per mm²
    is the tissue_mm2 that `mitodet detect` reports for the same image (half tissue, half glass)."""
    import json

    import numpy as np
    import pytest
    import tifffile

    from mitodet.cli.main import run
    from mitodet.io.image import read_image
    from mitodet.train.validate import tissue_area_mm2
    from tests.conftest import need

    tile, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-21-5784-01Z-00-DX1.tif"))
    half = np.concatenate([tile[:, :500], np.full_like(tile[:, :500], 242)], axis=1)
    path = tmp_path / "half.tif"
    tifffile.imwrite(path, half, resolution=(40000, 40000), resolutionunit="CENTIMETER")
    area = tissue_area_mm2(half, 0.25)
    assert 0.4 * 0.0625 < area < 0.6 * 0.0625
    with pytest.raises(SystemExit) as e:
        run(["detect", str(path), "--out", str(tmp_path / "o"), "--no-atypical", "--no-report", "-q"])
    assert e.value.code == 0
    summary = json.loads((tmp_path / "o" / "half.mitotic-figures.json").read_text())["summary"]
    assert summary["tissue_mm2"] == pytest.approx(area, rel=1e-3)


def test_pair_search_by_f1_mean_weighs_the_whole_fields():
    """With whole labelled fields, the pair is chosen by the mean of the F1 at density and the
    fields' official F1 (returned as f1_mean), by which the density rule's pair scores no higher."""
    truth = {"a": [(10.0, 10.0)], "f": [(10.0, 10.0), (60.0, 60.0)], "t": []}
    pa = {"a": [(10, 10, 0.80)], "f": [(10, 10, 0.95), (60, 60, 0.70), (90, 20, 0.85)], "t": []}
    pb = {"a": [(10, 11, 0.80)], "f": [(10, 11, 0.95), (60, 61, 0.70), (90, 21, 0.85)], "t": []}
    area = {"a": 0.01, "f": 0.02, "t": 0.05}
    plain = pair_search(truth, _points(pa), _points(pb), area, steps=20)
    mean = pair_search(truth, _points(pa), _points(pb), area, steps=20, fields={"f"})
    assert "f1_mean" in mean and "f1_mean" not in plain
    called = {
        k: [(x, y, 1.0) for x, y, a, b in v if a >= mean["threshold_a"] and b >= mean["threshold_b"]]
        for k, v in mean["pairs"].items()
    }
    fields = fields_f1(truth, called, {"f"}, 0.5)["f1"]
    assert mean["f1_mean"] == pytest.approx((mean["f1_density"] + fields) / 2)
    for found in (plain, mean):  # the mean rule scores at least as well by its own measure
        at = {
            k: [(x, y, 1.0) for x, y, a, b in v if a >= found["threshold_a"] and b >= found["threshold_b"]]
            for k, v in found["pairs"].items()
        }
        sc = density_scores(truth, at, area, 7.5, 0.5)["f1_density"]
        assert (sc + fields_f1(truth, at, {"f"}, 0.5)["f1"]) / 2 <= mean["f1_mean"] + 1e-12


def test_default_rule_follows_the_runs_own_selection():
    base = {"val": {"detect": True, "select": "f1_mean"}}
    assert default_rule(SimpleNamespace(val=SimpleNamespace(**base["val"]))) == "f1_mean"
    assert default_rule(SimpleNamespace(val=SimpleNamespace(detect=True, select="loss"))) == "f1_density"
    assert default_rule(SimpleNamespace(val=SimpleNamespace(detect=False, select="loss"))) == "pooled_f1"
