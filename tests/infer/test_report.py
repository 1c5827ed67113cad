"""The HTML report: self-contained, and rendered by a real browser (headless Chromium)."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import tifffile

from mitodet.infer import run
from tests.conftest import need
from tests.infer.helpers import tiny_pair

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def report(shared_data, tmp_path_factory):
    """The report of a real tile (two real tiles side by side on white glass) by two small models."""
    from mitodet.io.image import read_image

    d = tmp_path_factory.mktemp("report")
    a, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-21-5784-01Z-00-DX1.tif"))
    b, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-A7-A13E-01Z-00-DX1.tif"))
    img = np.full((1200, 2300, 3), 242, np.uint8)
    img[100:1100, 100:1100], img[100:1100, 1200:2200] = a, b
    tifffile.imwrite(d / "two tiles.tif", img, resolution=(40000, 40000), resolutionunit="CENTIMETER")
    dets = run.load_detectors(tiny_pair(d, threshold=0.4), threads=1)
    assert run.run_inputs(dets, [d / "two tiles.tif"], d / "out", options=run.Options(hotspot_mm2=0.1)) == 0
    return d / "out" / "two tiles.report.html"


def test_report_is_self_contained(report):
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # every picture embedded
    doc = (report.parent / "two tiles.mitotic-figures.json").read_text()
    import json

    s = json.loads(doc)["summary"]
    assert s["mitotic_figures"] > 0 and f">{s['mitotic_figures']}<" in page
    assert f"{s['tissue_mm2']:.2f}" in page and "0.1 mm² circle" in page
    assert page.count('class="crop') == min(48, s["candidates"])  # the gallery
    assert 0.45 < s["tissue_fraction"] < 0.8  # two tiles on glass


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    shot = tmp_path / "report.png"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--hide-scrollbars",
        "--window-size=1400,1600",
        f"--screenshot={shot}",
        report.resolve().as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False, env={**os.environ, "HOME": str(tmp_path)})
    assert shot.exists(), "Chromium wrote no screenshot"
    from PIL import Image

    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert px.shape[:2] == (1600, 1400)
    header = px[5:40, 5:600]
    assert (np.abs(header - (38, 38, 46)).sum(axis=2) < 30).mean() > 0.8  # the dark title bar
    body = px[200:900]
    assert body.std() > 30  # pictures drawn, not a blank page
    pink = (body[..., 0] > 150) & (body[..., 1] < 140) & (body[..., 2] > 120)  # H&E tissue on screen
    assert pink.mean() > 0.02
    if os.environ.get("MITODET_SCREENSHOT"):  # keep it to look at
        shutil.copy(shot, os.environ["MITODET_SCREENSHOT"])


def test_report_of_a_small_patch_does_not_mislead(shared_data, tmp_path):
    """A 256² patch (0.004 mm²): no hotspot, no density, an area that does not print as 0.00, a
    gallery headed by what it holds and scores that separate around the threshold."""
    patch = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    dets = run.load_detectors(tiny_pair(tmp_path, threshold=0.4), threads=1)
    opts = run.Options(mpp=0.2456, tissue=False, threshold=0.3)
    assert run.run_inputs(dets, [patch], tmp_path / "out", options=opts) == 0
    page = (tmp_path / "out" / "A00_01_0.report.html").read_text(encoding="utf-8")
    assert "0.00395" in page and ">0.00<" not in page  # 256² px at 0.2456 µm/px
    assert "no hotspot: less tissue than its 2 mm²" in page and "smaller than the 2 mm² hotspot" in page
    assert "per mm²: not shown" in page
    assert "Strongest detections" not in page and "Mitotic figures, strongest first" in page
    assert re.search(r"p=0\.\d{4}</b> <span title='logit\(p\) - logit\(threshold\)'>[+-]\d+\.\d", page)
    assert "mitodet 0." in page and "Research use only" in page and "--model: see their own" in page


def test_small_counts_show_no_share_and_speak_in_the_singular(shared_data, tmp_path):
    """A share of one figure is no proportion ("1 (100%) atypical"); one figure is singular.
    The bundled pair on a real ICPR 2012 patch holding one mitosis."""
    from mitodet.cli.main import run as cli_run

    patch = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    with pytest.raises(SystemExit) as e:
        cli_run(["detect", str(patch), "--mpp", "0.2456", "--out", str(tmp_path), "-q"])
    assert e.value.code == 0
    page = (tmp_path / "A00_01_0.report.html").read_text(encoding="utf-8")
    assert "<b>1</b><span>mitotic figure</span>" in page
    assert "%)</b><span>atypical mitotic figures" not in page
