import csv
import json

import pytest
import torch

from mitodet.errors import MitodetError
from mitodet.mine.hard import hard_negative_mining, keep_hardest
from mitodet.train.config import config_from_dict
from mitodet.train.run import train
from mitodet.train.rundir import read_run_config
from tests.train.conftest import make_small_crops, tiny_raw


def test_keep_hardest_keeps_highest_scores():
    s = torch.tensor([0.1, 0.9, 0.5, 0.05, 0.7, 0.3])
    assert keep_hardest(s, 0.5).tolist() == [1, 2, 4]
    assert keep_hardest(s, 0.8).tolist() == [1]
    assert keep_hardest(s, 0.01).tolist() == [0, 1, 2, 3, 4, 5]


def test_hard_mining_rounds_on_tiny_config(shared_data, tmp_path):
    crops = make_small_crops(shared_data, tmp_path / "crops", 25)
    base = train(config_from_dict(tiny_raw(crops, train={"epochs": 1, "steps_per_epoch": 4})), tmp_path / "run")
    res = hard_negative_mining(
        base.run_dir, rounds=2, drop_quantile=0.5, patience=2, overrides=["train.epochs=1", "train.steps_per_epoch=3"]
    )
    rows = list(csv.DictReader(open(res.table)))
    assert [int(r["round"]) for r in rows] == [0, 1, 2]
    n = [int(r["negatives"]) for r in rows]
    assert n[1] == round(n[0] * 0.5) and n[2] == round(n[1] * 0.5)  # each round halves the negatives
    assert abs(float(rows[2]["fraction_of_original"]) - n[2] / n[0]) < 1e-9
    kept = list(csv.DictReader(open(base.run_dir / "round2" / "negatives.csv")))
    assert len(kept) == n[2]
    r1 = {(r["image"], r["x"], r["y"]) for r in csv.DictReader(open(base.run_dir / "round1" / "negatives.csv"))}
    assert {(r["image"], r["x"], r["y"]) for r in kept} <= r1  # round 2 only drops from round 1's set
    # the retrained round used exactly the kept negatives, and the same validation split

    d = json.load(open(base.run_dir / "round2" / "data.json"))
    assert sum(d["train"]["negatives"].values()) == n[2]
    assert json.load(open(base.run_dir / "round2" / "split.json")) == json.load(open(base.run_dir / "split.json"))
    assert (base.run_dir / "hard_mining.png").is_file()
    assert res.best_round in (0, 1, 2) and res.best_checkpoint.is_file()
    assert not (base.run_dir / "training.lock").exists()  # a finished run holds no marker


def test_a_run_still_training_is_not_mined(tmp_path):
    """#19 item 9: mine hard refuses a run whose training process is alive (a crash's marker does not count)."""
    import socket
    import subprocess
    import sys

    run = tmp_path / "run"
    run.mkdir()
    for f in ("config.yaml", "split.json", "best.pt", "metrics.csv"):
        (run / f).write_text("x")
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / "training.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": alive.pid}))
        with pytest.raises(MitodetError, match=f"is still training \\(process {alive.pid}\\)"):
            hard_negative_mining(run)
    finally:
        alive.kill()
        alive.wait()
    with pytest.raises(MitodetError) as err:  # the process is gone: the marker is stale
        hard_negative_mining(run)
    assert "still training" not in str(err.value)


def test_patience_stops_when_f1_stops_rising(shared_data, tmp_path, monkeypatch):
    import mitodet.mine.hard as hard

    crops = make_small_crops(shared_data, tmp_path / "crops", 25)
    base = train(config_from_dict(tiny_raw(crops, train={"epochs": 1, "steps_per_epoch": 2})), tmp_path / "run")
    real = hard._best_metrics
    monkeypatch.setattr(hard, "_best_metrics", lambda d, s="loss": {**real(d, s), "score": 0.5})  # never rises
    res = hard.hard_negative_mining(
        base.run_dir, rounds=4, patience=1, overrides=["train.epochs=1", "train.steps_per_epoch=1"]
    )
    assert len(res.rows) == 2 and res.best_round == 0


def test_bad_arguments(tmp_path):
    with pytest.raises(MitodetError, match="not a finished training run"):
        hard_negative_mining(tmp_path)


def test_dense_rounds_mine_false_detections_as_hard_anchors(shared_data, tmp_path):
    crops = make_small_crops(shared_data, tmp_path / "crops", 12)
    raw = tiny_raw(
        crops,
        train={"mode": "dense", "epochs": 1, "steps_per_epoch": 3},
        sampling={"batch_size": 4},
        dense={"window": 32},
    )
    base = train(config_from_dict(raw), tmp_path / "run")
    res = hard_negative_mining(
        base.run_dir, rounds=1, drop_quantile=0.5, patience=1, overrides=["train.epochs=1", "train.steps_per_epoch=2"]
    )
    rows = list(csv.DictReader(open(base.run_dir / "round1" / "negatives.csv")))
    assert rows and {r["kind"] for r in rows} == {"hard"}
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.1
    cfg = read_run_config(base.run_dir / "round1")
    assert cfg.data.hard_negatives and cfg.sampling.negative_mix["hard"] > 0
    data = json.load(open(base.run_dir / "round1" / "data.json"))
    assert data["train"]["negatives"]["hard"] == len(rows)
    assert len(res.rows) == 2
