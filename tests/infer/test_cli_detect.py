import csv
import json
import math
import os
import shutil

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from mitodet.cli.main import app
from mitodet.infer import Detector
from mitodet.infer.calibrate import calibrate
from mitodet.model import load_checkpoint
from tests.conftest import need, one_error_line
from tests.infer.helpers import ImpulseNet, tiny_pair

runner = CliRunner()


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return tiny_pair(tmp_path_factory.mktemp("models"), threshold=0.5)


def test_detect_outputs_skip_and_bad_file(shared_data, ckpts, tmp_path):
    src = need(shared_data / "icpr2012_patches" / "images")
    inputs = [src / "A00_01_0.jpg", src / "A00_01_1.jpg"]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    args = [
        "detect",
        *map(str, inputs),
        str(bad),
        "--mpp",
        "0.2456",
        "--out",
        str(out),
        "--overlay",
        "--model",
        str(ckpts[0]),
        "--model",
        str(ckpts[1]),
        "--threshold",
        "0.3",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output  # the bad file fails at the end, the others are done
    assert "broken.png" in r.output
    doc = json.loads((out / "A00_01_0.mitotic-figures.json").read_text())
    assert doc["type"] == "Multiple points" and doc["points"]
    rows = list(csv.DictReader((out / "A00_01_0.csv").open()))
    assert list(rows[0]) == ["x_px", "y_px", "x_mm", "y_mm", "probability", "atypical_probability", "label"]
    assert len(rows) == len(doc["points"])
    for row, p in zip(rows, doc["points"], strict=False):
        assert math.isclose(float(row["x_px"]) * 0.2456 / 1000, p["point"][0], abs_tol=1e-5)
        assert row["label"] == p["name"] and 0 <= p["point"][0] < 256 * 0.2456e-3
    gj = json.loads((out / "A00_01_0.geojson").read_text())
    assert len(gj["features"]) == len(rows) and "probability" in gj["features"][0]["properties"]["measurements"]
    assert (out / "A00_01_1.overlay.png").stat().st_size > 0
    assert (out / "A00_01_1.report.html").stat().st_size > 0 and (out / "A00_01_0.tissue.png").exists()
    assert "3 input(s): 2 done, 0 skipped, 1 failed;" in r.output  # the totals line
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert [row["input"] for row in summary] == [str(p) for p in inputs] + [str(bad)]  # one row per input
    assert [row["status"] for row in summary] == ["done", "done", "failed"]
    args.remove(str(bad))
    r = runner.invoke(app, args)  # again without the bad file: all skipped
    assert r.exit_code == 0 and r.output.count("skipped (done") == 2
    again = list(csv.DictReader((out / "summary.csv").open()))  # rows of skipped inputs kept, as stored
    assert [row["input"] for row in again] == [str(bad)] + [str(p) for p in inputs]  # other inputs' rows first
    assert [row["status"] for row in again] == ["failed", "skipped", "skipped"]

    def numbers(row):
        return {k: v for k, v in row.items() if k != "status"}

    assert [numbers(row) for row in again[1:]] == [numbers(row) for row in summary[:2]]
    r = runner.invoke(app, args + ["--force", "--positives-only", "--no-report"])
    doc = json.loads((out / "A00_01_0.mitotic-figures.json").read_text())
    assert r.exit_code == 0 and {p["name"] for p in doc["points"]} <= {"mitotic figure"}
    assert doc["summary"]["mitotic_figures"] == len(doc["points"])


def test_bare_ray_option_means_a_local_runtime(tmp_path):
    from mitodet.cli.infer import normalize_argv

    f = tmp_path / "s.svs"
    f.write_bytes(b"")
    assert normalize_argv(["detect", "a.tif", "--ray"]) == ["detect", "a.tif", "--ray=local"]
    assert normalize_argv(["detect", "--ray", "--out", "o", "a.tif"])[1] == "--ray=local"
    assert normalize_argv(["detect", "--ray", str(f)]) == ["detect", "--ray=local", str(f)]
    assert normalize_argv(["detect", "a.tif", "--ray", "ray://head:10001"])[2:] == ["--ray", "ray://head:10001"]


def test_grand_challenge_mode(shared_data, ckpts, tmp_path):
    from mitodet.io.image import read_image

    tile, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-18-5592-01Z-00-DX1.tif"))
    (tmp_path / "in" / "images" / "roi").mkdir(parents=True)
    # a MIDOG-style TIFF with resolution tags (0.25 µm/px = 40000 px/cm), from a real tile
    tifffile.imwrite(
        tmp_path / "in" / "images" / "roi" / "case.tiff",
        tile[:300, :400],
        resolution=(40000, 40000),
        resolutionunit="CENTIMETER",
    )
    r = runner.invoke(
        app,
        [
            "detect",
            "--grand-challenge",
            "--gc-input",
            str(tmp_path / "in"),
            "--gc-output",
            str(tmp_path / "out"),
            "--model",
            str(ckpts[0]),
            "--threshold",
            "0.4",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out" / "mitotic-figures.json").read_text())
    assert doc["points"] and all(
        p["point"][0] <= 400 * 0.25e-3 and p["point"][1] <= 300 * 0.25e-3 for p in doc["points"]
    )
    assert {p["name"] for p in doc["points"]} <= {"mitotic figure", "non-mitotic figure"}


def test_grand_challenge_refuses_a_stack(cli, shared_data, ckpts, tmp_path):
    stack = need(shared_data / "midog25_stack" / "stack_5.tiff")
    (tmp_path / "in" / "images").mkdir(parents=True)
    shutil.copy(stack, tmp_path / "in" / "images" / "stack.tiff")
    code, _, err = cli("detect", "--grand-challenge", "--gc-input", tmp_path / "in", "--gc-output", tmp_path / "out",
                       "--model", ckpts[0])  # fmt: skip
    one_error_line(code, err, "stack.tiff", "is a stack of 16 images")
    assert not (tmp_path / "out" / "mitotic-figures.json").exists()


def test_missing_default_weights_is_one_line_error(tmp_path, monkeypatch):
    import mitodet.cli.infer as cli_infer

    monkeypatch.setattr(cli_infer, "DEFAULT_MODELS", [tmp_path / "none-rgb.pt", tmp_path / "none-od.pt"])
    r = runner.invoke(app, ["detect", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "default" in str(r.exception)


def test_upsampling_note_and_overlay(tmp_path):
    from PIL import Image

    from mitodet.infer.detector import Detection
    from mitodet.infer.outputs import write_overlay
    from mitodet.infer.plan import upsampling_note

    assert upsampling_note("s.svs", 0.499, 0.25) == "s.svs: upsampled x2 from 0.499 µm/px (model: 0.25 µm/px)"
    assert upsampling_note("s.svs", 0.2456, 0.25) is None
    img = np.full((200, 300, 3), 230, np.uint8)
    dets = [Detection(50, 60, 0.97), Detection(250, 5, 0.91), Detection(100, 100, 0.2, "non-mitotic figure")]
    write_overlay(tmp_path / "o.png", img, dets, 30.0, title="x.png", subtitle="model m threshold 0.9")
    im = np.asarray(Image.open(tmp_path / "o.png"))
    assert im.shape[1] == 900 and im.shape[0] > 600  # small image enlarged x3, title bar on top
    assert (im[..., 0] > 200).sum() > 0 and ((im[..., 0] > 200) & (im[..., 1] < 60)).any()  # red circles drawn


def test_calibrate_finds_f1_optimal_threshold(tmp_path):
    det = Detector(ImpulseNet(), mpp=0.25, min_distance_um=2.0)
    rng = np.random.default_rng(0)
    images = []
    for k in range(3):
        img = rng.integers(0, 8, (64, 64, 3), dtype=np.uint8)
        img[10 + k, 20] = 255  # mitosis: strong impulse
        img[40, 40 + k] = 40  # distractor: weak response (probability about 0.35)
        images.append((f"im{k}", img, 0.25, [(20, 10 + k)]))
    res = calibrate(det, images)
    assert res["f1"] > 0.99 and res["n_mitoses"] == 3
    # the threshold separates the mitoses from the distractors
    p_distractor = max(d.probability for d in det.candidates(images[0][1], 0.25) if abs(d.x - 40) < 3)
    assert p_distractor < res["threshold"] <= 1.0


def test_checkpoint_threshold_is_used(ckpts):
    model, meta = load_checkpoint(ckpts[0])
    assert Detector.from_checkpoint(ckpts[0]).threshold == meta["threshold"] == 0.5


def test_detect_names_each_page_of_a_stack(cli, shared_data, ckpts, tmp_path):
    """A 16-page TIFF: one line per page, its number shown as written (not eaten as markup)."""
    stack = need(shared_data / "midog25_stack" / "stack_5.tiff")
    out = tmp_path / "out[1]"  # brackets in a path must print as they are
    code, stdout, err = cli("detect", stack, "--out", out, "-m", ckpts[0], "-m", ckpts[1], "--no-report")
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert [line.split(": ")[0] for line in lines[:16]] == [f"{stack} [page {i}/16]" for i in range(1, 17)]
    assert lines[-1].startswith("16 input(s): 16 done") and str(out / "summary.csv") in lines[-1].replace("\n", "")


def test_a_run_where_every_input_failed_names_no_summary(cli, tmp_path):
    """#19 item 17: the "summary: <out>/summary.csv" line names a file that exists (with the failed row)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"x")
    code, out, err = cli("detect", tmp_path / "in", "--mpp", "0.25", "--out", tmp_path / "o", "--no-atypical")
    assert code == 2 and "a.png" in err
    summary = tmp_path / "o" / "summary.csv"  # it exists (the failed row), as the line says
    assert f"summary: {summary}" in out and "failed" in summary.read_text()


def test_a_summary_that_cannot_be_written_still_gives_the_totals(cli, shared_data, tmp_path, monkeypatch):
    """#19 item 17: disk full at summary.csv: one line naming it, after the run's totals; exit 2."""
    import mitodet.infer.run as run
    from mitodet.errors import MitodetError

    def full(out, rows, replaced=()):
        raise MitodetError(out / "summary.csv", "cannot write (No space left on device)")

    monkeypatch.setattr(run, "write_summary", full)
    src = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    code, out, err = cli("detect", src, "--mpp", "0.25", "--out", tmp_path / "o", "--no-atypical")
    assert code == 2 and "1 input(s): 1 done" in out and "summary.csv not written" in out
    assert f"error: {tmp_path / 'o' / 'summary.csv'}: cannot write (No space left on device)" in err
    assert (tmp_path / "o" / "A00_01_0.mitotic-figures.json").is_file()  # the outputs written stay


def test_a_file_name_that_is_not_utf8_gets_every_output(cli, shared_data, tmp_path):
    """#19 item 14: a name with the byte 0xff is detected, all its outputs written, and reused."""
    import os

    src = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    (tmp_path / "in").mkdir()
    name = os.fsdecode(b"bad\xffname.jpg")
    try:
        shutil.copy(src, tmp_path / "in" / name)
    except (OSError, UnicodeError):
        pytest.skip("this file system does not take names that are not UTF-8")
    code, out, err = cli("detect", tmp_path / "in", "--mpp", "0.25", "--out", tmp_path / "o", "--no-atypical")
    assert code == 0, err
    stem = os.fsdecode(b"bad\xffname")
    for suffix in (".mitotic-figures.json", ".csv", ".geojson", ".report.html", ".tissue.png"):
        assert (tmp_path / "o" / f"{stem}{suffix}").is_file(), suffix
    code, out, err = cli("detect", tmp_path / "in", "--mpp", "0.25", "--out", tmp_path / "o", "--no-atypical")
    assert code == 0 and "1 skipped" in out


def test_summary_has_a_row_per_input_with_its_status_and_a_rerun_reports_stored_numbers(cli, shared_data, tmp_path):
    """#20 item 9: done, skipped and failed inputs each have a row (with the error), and the
    totals of a rerun that skips done inputs give their stored numbers."""
    import csv as csv_mod

    (tmp_path / "in").mkdir()
    shutil.copy(need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg"), tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / "bad.png").write_bytes(b"x")
    args = ("detect", tmp_path / "in", "--mpp", "0.25", "--out", tmp_path / "o", "--no-atypical")
    code, first, _ = cli(*args)
    code, again, _ = cli(*args)
    rows = {os.path.basename(r["input"]): r for r in csv_mod.DictReader((tmp_path / "o" / "summary.csv").open())}
    assert rows["a.jpg"]["status"] == "skipped" and rows["bad.png"]["status"] == "failed"
    assert "not a readable image" in rows["bad.png"]["error"]
    n = rows["a.jpg"]["mitotic_figures"]
    assert f"0 done, 1 skipped, 1 failed; {n} mitotic figure(s) in 0.00410 mm²" in again
    assert f"1 done, 0 skipped, 1 failed; {n} mitotic figure(s)" in first
