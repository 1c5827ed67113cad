import csv
import subprocess
import sys

import torch

from mitodet.train.config import config_from_dict
from mitodet.train.run import train
from mitodet.train.rundir import load_validation_set, read_run_config
from tests.train.conftest import tiny_raw


def metrics(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_tiny_training_loss_falls_and_writes_run(small_crops, tmp_path):
    cfg = config_from_dict(tiny_raw(small_crops, train={"epochs": 3, "steps_per_epoch": 12}))
    s = train(cfg, tmp_path / "run")
    rows = metrics(s.run_dir)
    assert len(rows) == 3
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["val_auc"]) > 0.6  # real signal on held-out crops after a few dozen steps
    for f in ("config.yaml", "split.json", "data.json", "best.pt", "last.pt", "loss.png"):
        assert (s.run_dir / f).is_file()
    from mitodet.model import load_checkpoint

    model, meta = load_checkpoint(s.run_dir / "best.pt")
    assert meta["epoch"] == s.best_epoch and meta["augmentation"] == "ca-rgb" and meta["mpp"] == 0.25
    assert model.receptive_field == 16


def test_resume_is_bit_exact(small_crops, tmp_path):
    raw = tiny_raw(small_crops, train={"epochs": 2, "steps_per_epoch": 5})
    straight = train(config_from_dict(raw), tmp_path / "a")
    raw1 = tiny_raw(small_crops, train={"epochs": 1, "steps_per_epoch": 5})
    train(config_from_dict(raw1), tmp_path / "b")
    cfg = read_run_config(tmp_path / "b").model_copy(update={"train": config_from_dict(raw).train})
    resumed = train(cfg, tmp_path / "b", resume=True)
    a = torch.load(straight.run_dir / "last.pt", weights_only=True)
    b = torch.load(resumed.run_dir / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert metrics(tmp_path / "a")[-1]["val_loss"] == metrics(tmp_path / "b")[-1]["val_loss"]


def test_time_budget_stops_after_an_epoch(small_crops, tmp_path):
    cfg = config_from_dict(tiny_raw(small_crops, train={"epochs": 50, "steps_per_epoch": 2}))
    s = train(cfg, tmp_path / "r", max_minutes=1e-4)
    assert s.stopped_early and s.epochs == 1 and (tmp_path / "r" / "best.pt").is_file()


def test_domain_filter_and_validation_set(small_crops, tmp_path):
    raw = tiny_raw(small_crops, train={"epochs": 1, "steps_per_epoch": 1})
    raw["data"]["exclude"] = {"scanner": ["Aperio CS2"]}
    s = train(config_from_dict(raw), tmp_path / "r")
    val = load_validation_set(s.run_dir)
    assert val and all(v.domain["scanner"] != "Aperio CS2" for v in val)
    v = val[0]
    assert v.image.shape[2] == 3 and v.mpp in (0.23, 0.25) and v.points and v.id  # native spacing


def test_cli_bad_config_one_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim: {lr: -1}\n")
    r = subprocess.run([sys.executable, "-m", "mitodet.cli.main", "train", str(p)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith(f"error: {p}: optim.lr")


def test_progress_callbacks_name_the_epoch_and_follow_validation(small_crops, tmp_path):
    """#20 item 13: train() says which epoch of how many starts, and reports validation progress."""
    calls = []
    cfg = config_from_dict(tiny_raw(small_crops, train={"epochs": 2, "steps_per_epoch": 2}))
    train(
        cfg,
        tmp_path / "r",
        on_epoch=lambda e, n: calls.append(("epoch", e, n)),
        on_step=lambda s, n, loss, rate: calls.append(("step", s, n)),
        on_val=lambda what, d, n: calls.append(("val", what, d, n)),
    )
    epochs = [c for c in calls if c[0] == "epoch"]
    assert epochs == [("epoch", 1, 2), ("epoch", 2, 2)]
    second = calls[calls.index(("epoch", 2, 2)) :]
    assert second[1][0] == "step" and second[-1][:2] == ("val", "windows")
    done, total = second[-1][2:]
    assert done == total > 0
