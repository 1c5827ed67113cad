"""``evaluate`` checks its input (issue 12, item 6) and reads what users annotate: QuPath GeoJSON
and CSV point files, as truth and as predictions (item 11), scored on the real ICPR 2012 patches."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from mitodet.errors import MitodetError
from mitodet.evaluate.midog import evaluate
from mitodet.evaluate.sources import load_ground_truth, match_predictions, parse_points
from tests.conftest import need, one_error_line

ICPR_MPP = 0.2456
TRUTH_007 = {"007.tiff": [[0.374850364, 0.756961752, 0]]}
GOOD = {"name": "mitotic figure", "point": [0.374850364, 0.756961752, 0], "probability": 0.9}


def doc(*points) -> dict:
    return {"type": "Multiple points", "points": list(points)}


def write(tmp_path: Path, truth, preds: dict | None = None, raw_truth: str | None = None) -> tuple[Path, Path]:
    t = tmp_path / "truth.json"
    t.write_text(raw_truth if raw_truth is not None else json.dumps(truth))
    p = tmp_path / "preds"
    p.mkdir(exist_ok=True)
    for name, content in (preds or {}).items():
        (p / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return t, p


# -- item 6: malformed values are one-line errors naming the file -------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        '{"007.tiff": [[NaN, 0.75, 0]]}',
        '{"007.tiff": [["0.3", 0.75, 0]]}',
        '{"007.tiff": [5]}',
        '{"007.tiff": [[0.3]]}',
        '{"007.tiff": {"annotations": [[Infinity, 0.7, 0]]}}',
        '{"007.tiff": {"annotations": 3}}',
        '{"007.tiff": [[true, 0.7]]}',
        "{}",
        "[1, 2]",
    ],
)
def test_bad_truth(tmp_path, raw):
    t, _ = write(tmp_path, None, raw_truth=raw)
    with pytest.raises(MitodetError, match="truth.json") as err:
        load_ground_truth(t)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "point, words",
    [
        ({**GOOD, "probability": float("nan")}, "probability"),
        ({**GOOD, "probability": "high"}, "probability"),
        ({**GOOD, "probability": [1]}, "probability"),
        ({**GOOD, "point": ["0.3", 0.7, 0]}, "finite numbers"),
        ({**GOOD, "point": [float("nan"), 0.7, 0]}, "finite numbers"),
        ({**GOOD, "point": []}, "finite numbers"),
        ({**GOOD, "point": "0.3,0.7"}, "finite numbers"),
        ({**GOOD, "point": [0.1, 0.2, 0.3, 0.4]}, "finite numbers"),
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_bad_prediction_values(point, words, strict):
    with pytest.raises(MitodetError, match=words) as err:
        parse_points(json.loads(json.dumps(doc(point))), "p.json", strict)
    assert str(err.value).startswith("p.json: point 0: ")


def test_empty_point_is_no_longer_a_detection_at_the_origin(tmp_path):
    t, p = write(tmp_path, TRUTH_007, {"007.mitotic-figures.json": doc({**GOOD, "point": []})})
    with pytest.raises(MitodetError, match="point 0"):
        evaluate(t, p)


def test_nan_probability_is_no_longer_ap_one(tmp_path):
    raw = json.dumps(doc({**GOOD, "probability": 0.125})).replace("0.125", "NaN")
    t, p = write(tmp_path, TRUTH_007, {"007.mitotic-figures.json": raw})
    with pytest.raises(MitodetError, match="probability nan is not a finite number"):
        evaluate(t, p)


def test_names_that_do_not_pair_up(tmp_path):
    # none pairs: an error, not F1 0 with exit 0
    t, p = write(tmp_path, TRUTH_007, {"case7.mitotic-figures.json": doc(GOOD)})
    with pytest.raises(MitodetError, match="no prediction file matches a ground-truth image name"):
        evaluate(t, p)
    # some pair: scored, and both kinds of stray names reported
    truth = {**TRUTH_007, "008.tiff": [[0.1, 0.1, 0]]}
    t, p = write(tmp_path, truth, {"007.mitotic-figures.json": doc(GOOD)})
    out = evaluate(t, p)
    assert out["aggregates"]["tp"] == 1 and out["aggregates"]["fn"] == 1
    assert any("008.tiff" in w and "no predictions" in w for w in out["warnings"])
    assert any("case7.mitotic-figures.json" in w and "not scored" in w for w in out["warnings"])
    # an empty folder
    (p / "007.mitotic-figures.json").unlink()
    (p / "case7.mitotic-figures.json").unlink()
    with pytest.raises(MitodetError, match="no prediction files"):
        evaluate(t, p)


def test_grand_challenge_names_that_do_not_pair_up(shared_data, tmp_path):
    import shutil

    gc = Path(shutil.copytree(need(shared_data / "formats" / "midog2025_t1_eval"), tmp_path / "gc"))
    truth = json.loads((gc / "ground_truth.json").read_text())
    (gc / "renamed.json").write_text(json.dumps({f"x{k}": v for k, v in truth.items()}))
    with pytest.raises(MitodetError, match="none of its 3 image name"):
        evaluate(gc / "renamed.json", gc / "predictions.json")
    (gc / "fewer.json").write_text(json.dumps({k: v for k, v in list(truth.items())[:2]}))
    out = evaluate(gc / "fewer.json", gc / "predictions.json")
    assert any("not in the ground truth" in w for w in out["warnings"]) and len(out["results"]) == 2


def test_one_prediction_file_never_scores_two_images(tmp_path):
    """#19 item 8: 007.tiff and 007.png both strip to 007: one file must not be counted twice."""
    truth = {"007.tiff": [[0.1, 0.1, 0]], "007.png": [[0.2, 0.2, 0]]}
    t, p = write(tmp_path, truth, {"007.mitotic-figures.json": doc(GOOD)})
    with pytest.raises(MitodetError, match="would be the predictions of two ground-truth images"):
        evaluate(t, p)


def test_job_outputs_outside_the_predictions_folder_are_refused(shared_data, tmp_path):
    import shutil

    gc = Path(shutil.copytree(need(shared_data / "formats" / "midog2025_t1_eval"), tmp_path / "gc"))
    jobs = json.loads((gc / "predictions.json").read_text())
    jobs[0]["pk"] = "../../etc"
    (gc / "predictions.json").write_text(json.dumps(jobs))
    with pytest.raises(MitodetError, match="lies outside the predictions folder"):
        evaluate(gc / "ground_truth.json", gc / "predictions.json")


def test_unknown_point_names_are_reported(tmp_path):
    points, warnings = parse_points(doc({**GOOD, "name": "Mitotic Figure"}), "p.json")
    assert points[0][3] == 0 and any("'Mitotic Figure'" in w for w in warnings)


def test_official_metrics_unchanged_and_warning_free(shared_data):
    d = need(shared_data / "formats" / "midog2025_t1_eval")
    ref = json.loads((d / "metrics.json").read_text())
    out = evaluate(d / "ground_truth.json", d / "predictions.json")
    assert out["aggregates"] == {k: out["aggregates"][k] for k in ref["aggregates"]} | out["aggregates"]
    for key, value in ref["aggregates"].items():
        assert out["aggregates"][key] == value, key
    assert out["warnings"] == []


@pytest.mark.parametrize(
    "out_arg, words",
    [
        ("{tmp}/afile", ["afile", "not a folder"]),
        ("{tmp}/afile/sub", ["afile"]),
        ("/sys/mitodet-eval", ["/sys/mitodet-eval"]),
    ],
)
def test_unwritable_out_is_one_line(cli, shared_data, tmp_path, out_arg, words):
    (tmp_path / "afile").write_text("x")
    d = need(shared_data / "formats" / "midog2025_t1_eval")
    code, out, err = cli(
        "evaluate", "-t", d / "ground_truth.json", "-p", d / "predictions.json", "-o", out_arg.format(tmp=tmp_path)
    )
    one_error_line(code, err, *words)


@pytest.mark.parametrize("out_arg", ["{tmp}", "{tmp}/afile/s.json", "/sys/split.json"])
def test_data_split_unwritable_out_is_one_line(cli, shared_data, tmp_path, out_arg):
    (tmp_path / "afile").write_text("x")
    code, out, err = cli(
        "data", "split", need(shared_data / "annotations" / "MIDOG.json"), "--out", out_arg.format(tmp=tmp_path)
    )
    one_error_line(code, err)


def test_evaluate_cli_reports_and_scores(cli, tmp_path):
    truth = {**TRUTH_007, "008.tiff": [[0.1, 0.1, 0]]}
    t, p = write(tmp_path, truth, {"007.mitotic-figures.json": doc(GOOD), "999.mitotic-figures.json": doc(GOOD)})
    code, out, err = cli("evaluate", "-t", t, "-p", p, "-o", tmp_path / "ev")
    assert code == 0, err
    assert "008.tiff" in err and "999.mitotic-figures.json" in err
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["warnings"]
    (p / "007.mitotic-figures.json").write_text(json.dumps(doc({**GOOD, "point": []})))
    code, out, err = cli("evaluate", "-t", t, "-p", p, "-o", tmp_path / "ev")
    one_error_line(code, err, "007.mitotic-figures.json", "point 0")


# -- item 11: QuPath GeoJSON and CSV point files, scored on the ICPR 2012 patches ----------------------
@pytest.fixture(scope="module")
def icpr(shared_data, tmp_path_factory) -> dict:
    """The 50 real ICPR 2012 patches: detections of the bundled models (detect's files), and the
    real centroids (mitoses.csv) written as a user would annotate them, in four forms."""
    from mitodet.infer.run import load_detectors, run_inputs
    from mitodet.resources import WEIGHTS

    root = tmp_path_factory.mktemp("icpr")
    images = need(shared_data / "icpr2012_patches" / "images")
    files = sorted(images.glob("*.jpg"))
    pair = [WEIGHTS / "default-ca-rgb.pt", WEIGHTS / "default-ca-od.pt"]
    detectors = load_detectors(pair, backend="onnx")  # ONNX Runtime: ~2x faster on the CPU, same maps
    assert run_inputs(detectors, files, root / "det", mpp=ICPR_MPP) == 0
    rows = list(csv.DictReader(open(need(shared_data / "icpr2012_patches" / "mitoses.csv"), newline="")))
    by = {f.name: [(float(r["cx"]), float(r["cy"])) for r in rows if r["patch"] == f.name and r["cx"]] for f in files}
    assert sum(map(len, by.values())) == 23 and sum(1 for v in by.values() if not v) == 30
    forms = {"geojson": root / "geojson", "csv": root / "csv"}
    for d in forms.values():
        d.mkdir()
    with open(root / "table.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "x", "y", "label"])
        for name, pts in by.items():
            stem = Path(name).stem
            features = [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [x, y]},
                    "properties": {"objectType": "annotation", "classification": {"name": "Mitosis"}},
                }
                for x, y in pts
            ]
            (forms["geojson"] / f"{stem}.geojson").write_text(
                json.dumps({"type": "FeatureCollection", "features": features})
            )
            (forms["csv"] / f"{name}.csv").write_text(
                "x_px,y_px,label\n" + "".join(f"{x},{y},mitotic figure\n" for x, y in pts)
            )
            for x, y in pts:
                w.writerow([name, x, y, "mitotic figure"])
            if not pts:
                w.writerow([name, "", "", ""])
    midog = {name: [[x * ICPR_MPP / 1000, y * ICPR_MPP / 1000, 0] for x, y in pts] for name, pts in by.items()}
    (root / "truth.json").write_text(json.dumps(midog))
    forms.update(table=root / "table.csv", midog=root / "truth.json", det=root / "det")
    return forms


def test_icpr_scored_from_every_truth_form_alike(icpr):
    ref = evaluate(icpr["midog"], icpr["det"])
    agg = ref["aggregates"]
    assert len(ref["results"]) == 50 and agg["tp"] + agg["fn"] == 23
    assert agg["f1_score"] == pytest.approx(0.514, abs=0.0005)  # docs/model-report.md: bundled ensemble ICPR F1 0.514
    assert ref["warnings"] == []
    for form in ("geojson", "csv", "table"):
        out = evaluate(icpr[form], icpr["det"], mpp=ICPR_MPP)
        assert out["aggregates"] == agg, form
        assert out["warnings"] == [], form


@pytest.mark.parametrize("kind", ["csv", "geojson"])
def test_icpr_predictions_from_detects_csv_and_geojson(icpr, tmp_path, kind):
    import shutil

    ref = evaluate(icpr["midog"], icpr["det"])["aggregates"]
    only = tmp_path / kind
    only.mkdir()
    for f in icpr["det"].glob(f"*.{kind}"):
        shutil.copy(f, only)
    out = evaluate(icpr["geojson"], only, mpp=ICPR_MPP)["aggregates"]
    for key in ("tp", "fp", "fn", "f1_score", "precision", "recall"):
        assert out[key] == ref[key], key
    assert math.isclose(out["AP"], ref["AP"], abs_tol=1e-3)


def test_icpr_from_the_command_line(cli, icpr, tmp_path):
    code, out, err = cli("evaluate", "-t", icpr["geojson"], "-p", icpr["det"], "-o", tmp_path, "--mpp", ICPR_MPP)
    assert code == 0, err
    assert "0.5143" in out and "(50 images)" in out
    assert "F1 0.5143; 95 % interval 0.308-0.708 (bootstrap over the 50 images)" in out
    code, out, err = cli("evaluate", "-t", icpr["geojson"], "-p", icpr["det"], "-o", tmp_path)
    one_error_line(code, err, "--mpp")


def test_point_file_errors(tmp_path):
    (tmp_path / "poly.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}}
                ],
            }
        )
    )
    with pytest.raises(MitodetError, match="poly.geojson: feature 0: geometry 'Polygon' is not a Point"):
        load_ground_truth(tmp_path / "poly.geojson", 0.25)
    (tmp_path / "t.csv").write_text("image,x,y\na.tif,nan,3\n")
    with pytest.raises(MitodetError, match="t.csv: line 2"):
        load_ground_truth(tmp_path / "t.csv", 0.25)
    (tmp_path / "mm.csv").write_text("x_mm,y_mm\n0.1,0.2\n")
    assert load_ground_truth(tmp_path / "mm.csv")["mm"].points == [[0.1, 0.2, 0]]  # millimetres need no --mpp
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "d" / "a.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(MitodetError, match="two ground-truth files for image 'a'"):
        load_ground_truth(tmp_path / "d", 0.25)
    preds, warnings = match_predictions(tmp_path / "mm.csv", ["mm"])
    assert preds["mm"][0] == [[0.1, 0.2, 0, 1, 0.5]]


def test_absurd_json_is_one_line(cli, tmp_path):
    """#19 item 13: 100000-deep nesting and a 400-digit number give one line, not a traceback."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    big = tmp_path / "big.json"
    big.write_text('{"a.tiff": [[1' + "0" * 400 + ", 2, 0]]}")
    for args, words in (
        (("evaluate", "--truth", deep, "--pred", deep, "--out", tmp_path / "o"), ("deep.json", "nested too deeply")),
        (("evaluate", "--truth", big, "--pred", big, "--out", tmp_path / "o"), ("big.json", "finite numbers")),
        (("data", "stats", deep), ("deep.json", "nested too deeply")),
    ):
        code, _, err = cli(*args)
        one_error_line(code, err, *words)
