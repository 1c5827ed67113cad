"""``mitodet finetune --calibrate-only``: the thresholds chosen on a lab's fields, weights unchanged."""

import json

import numpy as np
import pytest

from mitodet.infer.run import load_detectors
from mitodet.model.checkpoint import load_checkpoint
from mitodet.resources import DEFAULT_MODELS
from mitodet.schema import Point
from mitodet.train.finetune import official_f1
from mitodet.train.labels import LabelledImage
from mitodet.train.recalibrate import (
    Candidates,
    best_shift,
    best_shift_sources,
    called,
    count_shift,
    logit,
    scores,
    shifted,
    split_fields,
)
from tests.conftest import one_error_line
from tests.train.test_finetune import lab  # noqa: F401  (the fixture: 4 real ICPR patches, labelled)


def test_pairs_are_called_when_both_probabilities_pass():
    c = Candidates([(0.0, 0.0)], np.array([[0.0, 0.0, 0.9, 0.6], [5.0, 5.0, 0.95, 0.95], [9.0, 9.0, 0.7, 0.99]]))
    assert called(c, [0.8, 0.5]) == [(0.0, 0.0), (5.0, 5.0)]
    assert called(c, [0.8, 0.9]) == [(5.0, 5.0)]


def test_one_logit_shift_moves_both_thresholds_to_the_best_official_f1():
    """A true pair at (0.9, 0.9) and a false one at (0.7, 0.95): from (0.5, 0.5), which calls both,
    the best shift raises both thresholds until only the true pair is left (F1 1)."""
    cands = {
        "a": Candidates([(0.0, 0.0)], np.array([[0.0, 0.0, 0.9, 0.9]])),
        "b": Candidates([], np.array([[3.0, 3.0, 0.7, 0.95]])),
    }
    shift = best_shift(cands, ["a", "b"], [0.5, 0.5])
    t = shifted([0.5, 0.5], shift)
    assert scores(cands, ["a", "b"], t)["f1"] == 1.0 and scores(cands, ["a", "b"], [0.5, 0.5])["f1"] < 1.0
    assert logit(t[0]) == pytest.approx(shift) and t[0] == pytest.approx(t[1])  # one shift for both
    assert 0.7 < t[0] < 0.72  # the smallest shift that drops the false pair (grid of 0.1 in logit)
    # nothing to gain: the shift stays 0
    assert best_shift({"a": Candidates([(0.0, 0.0)], np.array([[0.0, 0.0, 0.99]]))}, ["a"], [0.5]) == 0.0


def test_shift_over_sources_counts_each_source_once():
    """Source "crops": 10 images, each a true single at p 0.95 and a false one at 0.9; source
    "lab": one image whose true single sits at 0.85, beside a false one at 0.6. Pooled, the crops'
    20 candidates outvote the lab's one figure: the best threshold sits between 0.9 and 0.95. By
    the mean of the two sources' F1 the lab counts as much: a threshold between 0.6 and 0.85
    keeps its figure (crops F1 0.67, lab 1.0: mean 0.83 against 0.5)."""
    cands = {f"c{k}": Candidates([(0.0, 0.0)], np.array([[0.0, 0.0, 0.95], [3.0, 3.0, 0.9]])) for k in range(10)}
    cands["lab"] = Candidates([(0.0, 0.0)], np.array([[0.0, 0.0, 0.85], [3.0, 3.0, 0.6]]))
    crops = [f"c{k}" for k in range(10)]
    pooled = shifted([0.5], best_shift(cands, [*crops, "lab"], [0.5]))[0]
    mean = shifted([0.5], best_shift_sources(cands, {"crops": crops, "lab": ["lab"]}, [0.5]))[0]
    assert 0.9 < pooled <= 0.95 and 0.6 < mean <= 0.85
    # one source: the same as best_shift
    assert best_shift_sources(cands, {"all": crops}, [0.5]) == best_shift(cands, crops, [0.5])


def test_count_shift_follows_a_model_whose_logits_moved():
    """A model called 3 figures at 0.9 before more training; after it, every logit fell by 2 (the
    same figures at 0.9 -> 0.55). The shift that calls 3 figures again is -2: the threshold moves
    with the logits, not with any label."""
    before = np.array([0.95, 0.93, 0.91, 0.6, 0.3])
    after = 1 / (1 + np.exp(-(np.log(before / (1 - before)) - 2.0)))
    cands = {"a": Candidates([], np.stack([np.arange(5.0), np.zeros(5), after], axis=1))}
    assert sum(len(called(c, [0.9])) for c in cands.values()) == 0  # the stale threshold calls none
    shift = count_shift(cands, [0.9], 3)
    assert -2.5 < shift <= -1.9 and len(called(cands["a"], shifted([0.9], shift))) == 3
    assert count_shift(cands, [0.9], 0) == 0.0  # nothing called before: the smallest shift that keeps none


def test_split_keeps_an_image_with_mitoses_on_each_side(tmp_path):
    ims = [LabelledImage(tmp_path / f"{i}.png", 0.25, [Point(1, 1)] * (i < 3)) for i in range(8)]
    for seed in range(5):
        choosing, scoring = split_fields(ims, seed)
        assert sorted(map(str, (i.path for i in choosing + scoring))) == sorted(str(i.path) for i in ims)
        assert any(i.mitoses for i in choosing) and any(i.mitoses for i in scoring)
        assert len(scoring) == 1 + 1  # a quarter of each group, at least one with mitoses
    assert split_fields(ims, 0) == split_fields(ims, 0)


def test_calibrate_only_writes_recalibrated_copies_that_detect_as_scored(cli, lab, tmp_path):  # noqa: F811
    folder, table = lab
    out = tmp_path / "out"
    code, stdout, err = cli("finetune", folder, "--truth", table, "--mpp", "0.2456", "--out", out,
                            "--calibrate-only", "--threads", "1", "--seed", "3")  # fmt: skip
    assert code == 0, err
    assert "scoring fields" in stdout and "recalibrated" in stdout and "use it: mitodet detect" in stdout
    rep = json.loads((out / "recalibrate.json").read_text())
    assert rep["images"] == 4 and rep["mitoses"] == 3 and len(rep["scoring"]) == 1
    # --seed reaches the split (a user reruns with another to see how much the result moves)
    ims = [LabelledImage(p, 0.2456, [Point(1, 1)] * (p.name != "A00_02_0.jpg")) for p in sorted(folder.iterdir())]
    assert split_fields(ims, 3) != split_fields(ims, 0)
    assert rep["seed"] == 3 and rep["scoring"] == [str(i.path) for i in split_fields(ims, 3)[1]]
    models = [out / f"recalibrated-{m.stem}.pt" for m in DEFAULT_MODELS]
    for src, dst, t in zip(DEFAULT_MODELS, models, rep["thresholds"], strict=True):
        (w0, _), (w1, m1) = load_checkpoint(src), load_checkpoint(dst)
        assert m1["threshold"] == pytest.approx(t) and "lab's labelled fields" in m1["calibration"]["rule"]
        assert all((a == b).all() for a, b in zip(w0.state_dict().values(), w1.state_dict().values(), strict=True))
    # detection with the copies finds what the search scored at those thresholds
    images = [LabelledImage(p, 0.2456, []) for p in sorted(folder.iterdir())]
    truth = {"A00_01_0.jpg": [(127.5, 127.6)], "A00_01_1.jpg": [(145.7, 19.2)], "A00_03_0.jpg": [(120, 130)]}
    for im in images:
        im.points = [Point(x, y) for x, y in truth.get(im.path.name, [])]
    got, _ = official_f1(load_detectors(models), images)
    assert got["f1"] == pytest.approx(rep["final"]["f1"]) and got["tp"] == rep["final"]["tp"]
    assert got["fp"] == rep["final"]["fp"]
    assert "Weights: unchanged" in (out / "MODEL_CARD.md").read_text()


def test_calibrate_only_bad_input_is_one_line(cli, lab, tmp_path):  # noqa: F811
    folder, table = lab
    table.write_text("image,x,y\nA00_01_0.jpg,127.5,127.6\n")
    code, _, err = cli("finetune", folder, "--truth", table, "--mpp", "0.2456", "--out", tmp_path / "o",
                       "--calibrate-only")  # fmt: skip
    one_error_line(code, err, "A00_01_1.jpg", "no labels for this image")
    assert not (tmp_path / "o" / "recalibrate.json").exists()


def test_no_shift_is_minus_zero():
    """A lab whose best shift is none reads "+0.0", not "-0.0" (the grid's zero came out negative)."""
    import numpy as np

    from mitodet.train.recalibrate import SHIFTS

    zero = SHIFTS[SHIFTS == 0]
    assert len(zero) == 1 and not np.signbit(zero).any()
    assert f"{float(zero[0]):+.1f}" == "+0.0"
