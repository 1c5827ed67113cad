"""``mitodet data`` commands: tables on real data, one-line errors with exit code 2."""

from __future__ import annotations

import json
import sys

import pytest

from mitodet.cli import main
from tests.conftest import need


def _run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["mitodet", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main.run()
    out = capsys.readouterr()
    return exit_.value.code or 0, out.out, out.err


def test_stats_midogpp(monkeypatch, capsys, shared_data):
    code, out, _ = _run(monkeypatch, capsys, "data", "stats", need(shared_data / "annotations/MIDOG++.json"))
    assert code == 0
    assert "by tumor_type (7 domains)" in out and "11937" in out and "14349" in out
    assert "Hamamatsu XR" in out and "Hamammatsu" not in out


def test_stats_midog2021_and_by(monkeypatch, capsys, shared_data):
    code, out, _ = _run(monkeypatch, capsys, "data", "stats", need(shared_data / "annotations/MIDOG.json"))
    assert code == 0 and "(4 domains)" in out and "1721" in out and "2714" in out and "Leica GT450" in out
    code, out, err = _run(monkeypatch, capsys, "data", "stats", shared_data / "annotations/MIDOG.json", "--by", "organ")
    assert code == 2 and err.startswith("error: --by: unknown domain key 'organ'")


def test_split_writes_json(monkeypatch, capsys, shared_data, tmp_path):
    out_path = tmp_path / "split.json"
    code, out, err = _run(
        monkeypatch,
        capsys,
        "data",
        "split",
        need(shared_data / "annotations/MIDOG++.json"),
        "--out",
        out_path,
        "--seed",
        "1",
    )
    assert code == 0 and "wrote" in out
    assert "note: 50 image(s) without any annotation left out of the split" in err
    doc = json.loads(out_path.read_text())
    # the 50 images without any annotation (unknown, not mitosis-free) are in neither part
    assert doc["n_train"] + doc["n_val"] == 553 - 50
    assert doc["stratify"] == ["tumor_type", "scanner"] and doc["seed"] == 1
    assert doc["mitoses"]["train"] + doc["mitoses"]["val"] == 11937


@pytest.mark.parametrize("kind", ["missing", "corrupt", "not midog", "bbox"])
def test_bad_input_one_line_exit_2_no_output(monkeypatch, capsys, shared_data, tmp_path, kind):
    src = tmp_path / "ann.json"
    if kind == "corrupt":
        src.write_bytes(b"\x00\xff garbage")
    elif kind == "not midog":
        src.write_text('{"images": []}')
    elif kind == "bbox":
        doc = json.loads(need(shared_data / "annotations/MIDOG.json").read_text())
        doc["annotations"][0]["bbox"] = [1, 2]
        src.write_text(json.dumps(doc))
    out_path = tmp_path / "split.json"
    code, _, err = _run(monkeypatch, capsys, "data", "split", src, "--out", out_path)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {src}: ") and "Traceback" not in err
    assert not out_path.exists() and list(tmp_path.iterdir()) == ([src] if kind != "missing" else [])


def test_image_command(monkeypatch, capsys, shared_data):
    tcga = need(shared_data / "wsi/tcga-cr-7395-01a-01-ts1.svs")
    code, _, err = _run(monkeypatch, capsys, "data", "image", tcga)
    assert code == 2 and err == f"error: {tcga}: no pixel spacing stored; pass --mpp\n"
    code, out, _ = _run(monkeypatch, capsys, "data", "image", tcga, "--mpp", "0.25", "--target-mpp", "0.5")
    assert code == 0 and "2221" in out and "from level 1" in out
    code, out, err = _run(monkeypatch, capsys, "data", "image", need(shared_data / "wsi/CMU-1-Small-Region.svs"))
    assert code == 0 and "upsamples x2.00" in err and "0.4990" in out  # the warning is a diagnostic: stderr


def test_subprocess_exit_code(tmp_path):
    """The real console path: a missing file gives exit code 2 and one line on stderr."""
    import subprocess

    missing = tmp_path / "nope.json"
    res = subprocess.run(
        [sys.executable, "-m", "mitodet.cli.main", "data", "stats", str(missing)], capture_output=True, text=True
    )
    assert res.returncode == 2 and res.stderr == f"error: {missing}: file or folder not found\n" and res.stdout == ""
