"""The atypical classifier's training: a tiny network on the real crops, two short epochs."""

import csv
import json

import pytest

from mitodet.classify.predict import AtypicalClassifier
from mitodet.errors import MitodetError
from mitodet.train.atypical import train_atypical
from mitodet.train.atypical_config import atypical_config, load_atypical_config
from tests.conftest import need


def _cfg(shared_data, **train):
    return atypical_config(
        {
            "model": {"name": "atypical-tiny"},
            "data": {"crops": str(need(shared_data / "midog21_crops")), "atnorm": str(need(shared_data / "atnorm_md"))},
            "train": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 8, **train},
        }
    )


def test_trains_selects_by_balanced_accuracy_and_resumes(shared_data, tmp_path):
    run = tmp_path / "run"
    s = train_atypical(_cfg(shared_data, epochs=1), run)
    assert {"config.yaml", "split.json", "metrics.csv", "best.pt", "last.pt", "validation.csv"} <= {
        p.name for p in run.iterdir()
    }
    assert set(s["per"]) >= {"MIDOG 2021", "AtNorM-MD"} and 0 <= s["balanced_accuracy"] <= 1
    clf = AtypicalClassifier.from_checkpoint(run / "best.pt")
    assert clf.threshold == pytest.approx(s["threshold"]) and clf.input == 96
    with open(run / "validation.csv", newline="") as fh:
        val = list(csv.DictReader(fh))
    split = json.loads((run / "split.json").read_text())
    assert len(val) == split["n_val"] and not set(split["train"]) & set(split["val"])
    cfg = load_atypical_config(run / "config.yaml", ["train.epochs=2"], check_paths=False)
    calls = []
    train_atypical(
        cfg,
        run,
        resume=True,
        on_start=lambda e, n: calls.append(("epoch", e, n)),
        on_step=lambda s, n, loss, rate: calls.append(("step", s, n)),
        on_val=lambda what, d, n: calls.append(("val", what, d, n)),
    )
    with open(run / "metrics.csv", newline="") as fh:
        assert [r["epoch"] for r in csv.DictReader(fh)] == ["1", "2"]  # continued, not restarted
    # progress (#20 item 13): the resumed run says it is in epoch 2 of 2, then validates the crops
    assert calls[0] == ("epoch", 2, 2) and calls[1][0] == "step"
    assert calls[-1][:2] == ("val", "crops") and calls[-1][2] == calls[-1][3] == split["n_val"]


def test_config_errors_are_one_line(shared_data, tmp_path):
    with pytest.raises(MitodetError, match="data.input"):
        atypical_config({"data": {"crops": str(shared_data / "midog21_crops"), "input": 110}})
    with pytest.raises(MitodetError, match="no labelled crops"):
        atypical_config({})
    with pytest.raises(MitodetError, match="data.crops: path"):
        atypical_config({"data": {"crops": str(tmp_path / "nowhere")}})
    with pytest.raises(MitodetError, match="optim.lr"):
        atypical_config({"data": {"crops": str(shared_data / "midog21_crops")}, "optim": {"lr": float("inf")}})
