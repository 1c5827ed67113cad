"""CSV injection (OWASP): no cell mitodet writes starts like a spreadsheet formula."""

from __future__ import annotations

import csv

import numpy as np
import tifffile
from PIL import Image

from mitodet.io.atomic import safe_cell, write_csv
from tests.conftest import need


def test_formula_cells_are_neutralised_numbers_are_not(tmp_path):
    assert safe_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert [safe_cell(v) for v in ("+1+2", "-cmd", "@SUM(A1)", "\tx", "\rx")] == [
        "'+1+2",
        "'-cmd",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
    ]
    assert [safe_cell(v) for v in ("-0.5", "+3", "-1e-3", -2.5, 7, "name", "")] == [
        "-0.5",
        "+3",
        "-1e-3",
        -2.5,
        7,
        "name",
        "",
    ]
    write_csv(tmp_path / "t.csv", ["a", "=b"], [["=1+1", "-0.50"], {"a": "@x", "=b": 3}])
    rows = list(csv.reader(open(tmp_path / "t.csv", newline="")))
    assert rows == [["a", "'=b"], ["'=1+1", "-0.50"], ["'@x", "3"]]


def test_detect_summary_names_an_input_as_text(cli, shared_data, tmp_path, monkeypatch):
    jpg = sorted((need(shared_data / "icpr2012_patches") / "images").glob("*.jpg"))[0]
    patch = np.asarray(Image.open(jpg).convert("RGB"))
    name = tmp_path / "=1+cmd.tiff"
    tifffile.imwrite(name, patch, photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER")
    monkeypatch.chdir(tmp_path)  # the input named as a user types it: =1+cmd.tiff
    for _ in range(2):  # a rerun into the same folder keeps one row for the input
        code, _, err = cli("detect", name.name, "--out", tmp_path / "out", "--force", "--no-report")
        assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "out" / "summary.csv", newline="")))
    assert len(rows) == 1 and rows[0]["input"].startswith("'=")
    for f in (tmp_path / "out").glob("*.csv"):
        for row in csv.reader(open(f, newline="")):
            for cell in row:
                assert not cell.startswith(("=", "+", "@")), (f.name, cell)
