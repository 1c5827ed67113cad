"""``mitodet classify`` and ``mitodet train-atypical`` from the command line, on real crops."""

import csv
import json
import shutil

from tests.classify.conftest import pick
from tests.conftest import need, one_error_line


def _folders(shared_data, tmp_path, n=6):
    crops = pick(need(shared_data / "atnorm_md"), n)
    root = tmp_path / "crops"
    for label, files in crops.items():
        d = root / ("Atypical" if label else "Normal") / "sub"
        d.mkdir(parents=True)
        for f in files:
            shutil.copy(f, d / f.name)
    return root, crops


def test_classify_folders_with_folder_truth(cli, shared_data, tmp_path):
    root, _ = _folders(shared_data, tmp_path)
    code, out, err = cli("classify", root, "--mpp", "0.24", "--out", tmp_path / "o", "--truth", root)
    assert code == 0, err
    assert "12 crop(s):" in out and "balanced accuracy" in out and "AUROC" in out
    with open(tmp_path / "o" / "classify.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and set(rows[0]) == {"file", "atypical_probability", "label"}
    assert {r["label"] for r in rows} <= {"atypical", "normal"} and rows[0]["file"].startswith(str(root))
    m = json.loads((tmp_path / "o" / "classify-metrics.json").read_text())
    assert m["scored"] == 12 and m["atypical"] == 6 and sum(m["confusion"].values()) == 12


def test_classify_with_a_csv_truth(cli, shared_data, tmp_path):
    root = need(shared_data / "atnorm_md")
    crops = pick(root, 5)
    files = crops[True] + crops[False]
    code, out, err = cli("classify", *files, "--mpp", "0.24", "-o", tmp_path / "o", "--truth", root / "crops.csv")
    assert code == 0, err
    assert "10 crop(s)" in out and "normal (5)" in out
    assert "truth row(s) match no crop" in out  # the table lists all 1475 crops


def test_classify_bad_input_is_one_line(cli, shared_data, tmp_path):
    root, crops = _folders(shared_data, tmp_path, 2)
    code, _, err = cli("classify", root, "-o", tmp_path / "o")
    one_error_line(code, err, "no pixel spacing", "--mpp")
    bad = tmp_path / "truth.csv"
    bad.write_text("file,atypical\n" + crops[True][0].name + ",maybe\n")
    code, _, err = cli("classify", root, "--mpp", "0.24", "-o", tmp_path / "o", "--truth", bad)
    one_error_line(code, err, "truth.csv", "line 2", "maybe")
    code, _, err = cli("classify", tmp_path / "missing", "--mpp", "0.24", "-o", tmp_path / "o")
    one_error_line(code, err, "missing", "no such file")
    (tmp_path / "other").mkdir()
    code, _, err = cli("classify", root, "--mpp", "0.24", "-o", tmp_path / "o", "--truth", tmp_path / "other")
    one_error_line(code, err, "gives no label")
    assert not (tmp_path / "o" / "classify-metrics.json").exists()


def test_train_atypical_refuses_a_used_run_dir(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"x")
    code, _, err = cli("train-atypical", "atypical", "--run-dir", run)
    one_error_line(code, err, "holds a run already", "--force")
