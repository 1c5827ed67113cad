import json
import math

import pytest

from mitodet.errors import MitodetError
from mitodet.evaluate import average_precision, froc_auc
from mitodet.evaluate.midog import evaluate, load_ground_truth, load_predictions, parse_points
from tests.conftest import need


@pytest.fixture
def eval_dir(shared_data):
    return need(shared_data / "formats" / "midog2025_t1_eval")


def test_reproduces_official_metrics_json(eval_dir):
    ref = json.loads((eval_dir / "metrics.json").read_text())
    out = evaluate(eval_dir / "ground_truth.json", eval_dir / "predictions.json")
    for key, value in ref["aggregates"].items():
        assert out["aggregates"][key] == value, key  # bit-exact, AP included
    ours = {r["image"]: r for r in out["results"]}
    for r in ref["results"]:
        assert ours[r["image"]]["metrics"] == r["metrics"]
        assert ours[r["image"]]["pred"] == r["pred"]
        assert ours[r["image"]]["tumor_domain"] == r["tumor_domain"]
        assert ours[r["image"]]["roi_type"] == r["roi_type"]


def test_pixel_coordinates_flagged_or_rejected(eval_dir):
    out = evaluate(eval_dir / "ground_truth.json", eval_dir / "predictions.json")
    warned = {r["image"] for r in out["results"] if r["warnings"]}
    assert warned == {"007.tiff"}  # its second point is (130.1, 115.5): pixels, not mm
    with pytest.raises(MitodetError, match="millimetres"):
        evaluate(eval_dir / "ground_truth.json", eval_dir / "predictions.json", strict=True)


def test_old_ground_truth_format_and_folder_predictions(shared_data, tmp_path):
    gt = load_ground_truth(need(shared_data / "formats" / "midog2021_2022_eval" / "ground-truth.json"))
    assert list(gt) == ["007.tiff"] and len(gt["007.tiff"].points) == 2
    doc = {
        "type": "Multiple points",
        "points": [
            {"name": "mitotic figure", "point": [0.374850364, 0.756961752, 0], "probability": 0.9},
            {"name": "non-mitotic figure", "point": [0.3749, 0.7570, 0], "probability": 0.3},
        ],
    }
    (tmp_path / "007.mitotic-figures.json").write_text(json.dumps(doc))
    preds = load_predictions(tmp_path, list(gt))
    assert [p[3] for p in preds["007.tiff"][0]] == [1, 0]
    out = evaluate(shared_data / "formats" / "midog2021_2022_eval" / "ground-truth.json", tmp_path)
    # the duplicate GT point stays unmatched: the non-mitotic point does not count for F1
    assert out["results"][0]["metrics"] == {"true_positives": 1, "false_negatives": 1, "false_positives": 0}


def test_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "gt.json"
    bad.write_text("{not json")
    with pytest.raises(MitodetError, match="not valid JSON"):
        load_ground_truth(bad)
    with pytest.raises(MitodetError, match="file not found"):
        load_ground_truth(tmp_path / "missing.json")
    with pytest.raises(MitodetError, match="points"):
        parse_points({"foo": 1}, "x.json")


def test_ap_coco_101_point():
    # 1 image, 3 GT; detections TP(0.9), FP(0.8), TP(0.7): precision 1 up to recall 1/3,
    # then 2/3 up to recall 2/3; recall 1 never reached.
    gt = [[(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)]]
    pred = [[(0.1, 0.1, 0.9), (0.5, 0.5, 0.8), (0.2, 0.2, 0.7)]]
    expected = (34 * 1.0 + 33 * (2 / 3)) / 101  # thresholds 0..0.33 and 0.34..0.66
    assert math.isclose(average_precision(gt, pred), expected, rel_tol=1e-6)
    assert average_precision([[]], [[(0.1, 0.1, 0.5)]]) == -1.0


def test_froc_constant_curve_and_empty():
    # TP at 0.9 and FP at 0.1: every threshold above the lowest has sensitivity 1 at 0 FP/image
    gt = [[(0.0, 0.0)]]
    pred = [[(0.0, 0.0, 0.9), (1.0, 1.0, 0.1)]]
    assert math.isclose(froc_auc(gt, pred, 7.5e-3), 8 / (1 + 1e-6), rel_tol=1e-9)
    assert math.isnan(froc_auc(gt, [[]], 7.5e-3))


def test_cli_says_what_froc_is_and_when_points_are_few(cli, eval_dir, tmp_path):
    code, out, err = cli("evaluate", "-t", eval_dir / "ground_truth.json", "-p", eval_dir / "predictions.json",
                         "-o", tmp_path)  # fmt: skip
    assert code == 0 and "FROC-AUC/8" in out
    raw = json.loads((tmp_path / "metrics.json").read_text())["aggregates"]["froc_auc"]
    assert raw > 1 and f"{raw / 8:.3f}" in out  # metrics.json keeps the undivided area; the table shows it / 8
    assert "mean sensitivity over 0-8 false positives per image" in err
    assert "AP and FROC rest on few points (7 true, 6 predicted" in err
    assert all(len(line) <= 80 for line in err.splitlines() if not line.startswith("warning"))
