"""``mitodet finetune`` end to end with tiny models on real patches (seconds, not minutes)."""

import json
import shutil

import pytest

from mitodet.infer.run import load_detectors
from mitodet.train.finetune import Clock, labelled_fields, official_f1
from mitodet.train.recalibrate import candidates, count_shift, shifted
from tests.conftest import need, one_error_line
from tests.infer.helpers import tiny_pair


@pytest.fixture
def lab(shared_data, tmp_path):
    src = need(shared_data / "icpr2012_patches" / "images")
    folder = tmp_path / "lab"
    folder.mkdir()
    names = ["A00_01_0.jpg", "A00_01_1.jpg", "A00_02_0.jpg", "A00_03_0.jpg"]
    for n in names:
        shutil.copy(src / n, folder / n)
    table = tmp_path / "labels.csv"
    table.write_text(
        "image,x,y,label\nA00_01_0.jpg,127.5,127.6,mitotic figure\nA00_01_1.jpg,145.7,19.2,mitotic figure\n"
        "A00_01_1.jpg,60,60,non-mitotic figure\nA00_02_0.jpg,,,\nA00_03_0.jpg,120,130,mitotic figure\n"
    )
    return folder, table


def test_finetune_writes_the_adapted_pair_and_its_card(cli, lab, tmp_path, monkeypatch):
    monkeypatch.setenv("MITODET_DATA", str(tmp_path / "no-data"))  # no original crops: the lab alone
    a, b = tiny_pair(tmp_path)
    folder, table = lab
    out = tmp_path / "out"
    code, stdout, err = cli("finetune", folder, "--truth", table, "--mpp", "0.2456", "--out", out,
                            "--minutes", "0.05", "--from", a, "--from", b, "--threads", "1", "--seed", "2")  # fmt: skip
    assert code == 0, err
    assert "not found" in err and "the lab's fields alone" in err  # says it fine-tuned without the guard
    assert f"--model {out / 'adapted-a.pt'} --model {out / 'adapted-b.pt'}" in stdout
    rep = json.loads((out / "finetune.json").read_text())
    assert rep["images"] == 4 and rep["mitoses"] == 3 and rep["imposters"] == 1 and not rep["forgetting_guard"]
    assert len(rep["calibration"]) == 1 and len(rep["adaptation"]) == 3
    assert set(rep["before"]) >= {"f1", "tp"} and set(rep["after"]) >= {"f1", "tp"}
    # beside the given pair at its thresholds: the same pair at the one shift best on these fields
    # (what --calibrate-only gives), never below it, and said when the adapted pair does not beat it
    assert rep["moved"]["f1"] >= rep["before"]["f1"] and -6.0 <= rep["moved"]["shift"] <= 4.0
    assert ("no better on the calibration fields" in err) == (rep["after"]["f1"] <= rep["moved"]["f1"])
    assert ("no sure gain" in err) == (not rep["interval"][0] > 0)  # an uncertain gain is said to be one
    card = (out / "MODEL_CARD.md").read_text()
    assert f"moved by {rep['moved']['shift']:+.1f} in logit space" in card
    assert "4 labelled images" in card and "bootstrap interval" in card and "(seed 2)" in card
    assert rep["seed"] == 2
    for m in ("a", "b"):
        assert (out / m / "last.pt").is_file() and (out / m / "metrics.csv").is_file()  # its training state
        assert (out / m / "final" / "last.pt").is_file()  # and the final epochs on every field
    # the adapted pair's score, taken from the candidates its thresholds were chosen on, is what
    # detection with those thresholds scores
    cal = [im for im in labelled_fields([folder], table, 0.2456) if str(im.path) in rep["calibration"]]
    again, _ = official_f1(load_detectors([out / "a" / "best.pt", out / "b" / "best.pt"]), cal)
    assert {k: again[k] for k in ("tp", "fp", "fn")} == {k: rep["after"][k] for k in ("tp", "fp", "fn")}
    # the final epochs moved the logits: the adapted checkpoints carry the thresholds moved with
    # them, to where the final pair calls as many figures there as before its final epochs (or nearest)
    final = [out / "adapted-a.pt", out / "adapted-b.pt"]
    assert [load_detectors([f])[0].threshold for f in final] == pytest.approx(rep["final_thresholds"])
    assert rep["final_thresholds"] == pytest.approx(shifted(rep["thresholds"], rep["final_shift"]))
    assert f"moved with them by {rep['final_shift']:+.1f}" in card
    near = count_shift(candidates(load_detectors(final), cal), rep["final_thresholds"], again["tp"] + again["fp"])
    assert near == 0.0  # no other shift comes nearer the count
    code, _, err = cli("detect", folder / "A00_01_0.jpg", "--mpp", "0.2456", "-o", tmp_path / "d",
                       "--model", out / "adapted-a.pt", "--model", out / "adapted-b.pt")  # fmt: skip
    assert code == 0, err


def test_finetune_bad_input_is_one_line(cli, lab, tmp_path):
    folder, table = lab
    table.write_text("image,x,y\nA00_01_0.jpg,127.5,127.6\n")
    code, _, err = cli("finetune", folder, "--truth", table, "--mpp", "0.2456", "--out", tmp_path / "o")
    one_error_line(code, err, "A00_01_1.jpg", "no labels for this image")
    code, _, err = cli("finetune", folder, "--truth", table, "--out", tmp_path / "o")
    one_error_line(code, err, "no pixel spacing", "--mpp")


def test_clock_gives_each_training_its_share_of_what_is_left(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("mitodet.train.finetune.time.perf_counter", lambda: now[0])
    clock = Clock(deadline=1000.0, load_s=20.0)
    # 900 s left, 100 reserved, 4 trainings to load (80): 720 s, a quarter of it by weight
    assert clock.share(0.25, 1.0, 4, 100.0) == 180.0
    epochs = []
    watched = clock.watch({"on_epoch": lambda e, n: epochs.append(e)})
    now[0] = 135.0  # the first epoch starts 35 s after the training was called: its loading
    watched["on_epoch"](1, 10)
    now[0] = 300.0
    watched["on_epoch"](2, 10)
    assert clock.load_s == 35.0 and epochs == [1, 2]  # measured once, and the bar's callback still runs
    now[0] = 2000.0  # past the deadline: still one epoch
    assert clock.share(0.5, 0.5, 1, 0.0) == 1.0
