"""The Python API: mitodet.detect on paths, arrays, PIL images and slide objects gives the CLI's points."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

import mitodet
from mitodet.errors import MitodetError
from tests.conftest import ROOT, need

SLIDE = ROOT / "mitodet" / "examples" / "CMU-1-Small-Region.svs"
ICPR_MPP = 0.2456


@pytest.fixture(scope="module")
def models():
    return mitodet.pretrained(threads=1)


@pytest.fixture(scope="module")
def patch(shared_data):
    images = sorted((need(shared_data / "icpr2012_patches") / "images").glob("*.jpg"))
    return np.asarray(Image.open(images[0]).convert("RGB"))


def test_import_is_light():
    code = "import mitodet, sys; mitodet.__version__; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_array_gives_the_cli_points(models, patch, tmp_path, cli):
    result = mitodet.detect(patch, mpp=ICPR_MPP, models=models)
    assert result.points and set(result.points[0]) == {
        "x_px", "y_px", "x_mm", "y_mm", "probability", "atypical_probability", "label"
    }  # fmt: skip
    mfs = [p for p in result.points if p["label"] == "mitotic figure"]
    assert all(0 <= p["atypical_probability"] <= 1 for p in mfs)  # every figure classified
    assert result.summary["atypical_figures"] == sum(
        p["atypical_probability"] >= result.summary["atypical_threshold"] for p in mfs
    )
    tifffile.imwrite(tmp_path / "p.tiff", patch, photometric="rgb", resolution=(1e4 / ICPR_MPP,) * 2,
                     resolutionunit="CENTIMETER")  # fmt: skip
    code, _, err = cli("detect", tmp_path / "p.tiff", "--out", tmp_path / "out")
    assert code == 0, err
    with open(tmp_path / "out" / "p.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(float(r["x_px"]), float(r["y_px"]), float(r["probability"]), r["label"]) for r in rows] == [
        (p["x_px"], p["y_px"], p["probability"], p["label"]) for p in result.points
    ]
    off = mitodet.detect(patch, mpp=ICPR_MPP, models=models, atypical=False)
    assert all(p["atypical_probability"] is None for p in off.points) and off.summary["atypical_figures"] == ""
    same = mitodet.detect(Image.fromarray(patch), mpp=ICPR_MPP, models=models)  # a PIL image too
    assert same.points == result.points
    assert result.summary["mitotic_figures"] == len(result.mitotic_figures)


def test_slide_object_equals_its_path_and_saves_the_cli_files(models, tmp_path):
    openslide = pytest.importorskip("openslide")
    by_path = mitodet.detect(SLIDE, models=models)
    with openslide.OpenSlide(str(SLIDE)) as slide:
        by_object = mitodet.detect(slide, models=models)
    assert by_object.points == by_path.points and by_path.summary == by_object.summary
    tiffslide = pytest.importorskip("tiffslide")
    with tiffslide.TiffSlide(str(SLIDE)) as slide:
        assert mitodet.detect(slide, models=models).points == by_path.points
    written = by_path.save(tmp_path)
    names = sorted(p.name for p in written)
    assert "CMU-1-Small-Region.mitotic-figures.json" in names and "CMU-1-Small-Region.geojson" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # nothing else (no temporary file)


def test_bad_sources_are_one_line(models, patch):
    with pytest.raises(MitodetError, match="mpp"):
        mitodet.detect(patch, models=models)
    with pytest.raises(MitodetError, match=r"\(H, W, 3\) uint8"):
        mitodet.detect(patch.astype(np.float32), mpp=0.25, models=models)
    with pytest.raises(MitodetError, match="cannot read a dict"):
        mitodet.detect({}, models=models)
    with pytest.raises(MitodetError, match="not found"):
        mitodet.detect("no-such-image.tiff", models=models)


def test_progress_callback_follows_regions(models, patch):
    seen = []
    mitodet.detect(patch, mpp=ICPR_MPP, models=models, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (1, 1)


def test_evaluate_reproduces_the_official_metrics(shared_data):
    import json

    fmt = need(shared_data / "formats" / "midog2025_t1_eval")
    official = json.loads((fmt / "metrics.json").read_text())
    scores = mitodet.evaluate(fmt / "ground_truth.json", fmt / "predictions.json")
    for key, value in official["aggregates"].items():
        assert scores["aggregates"][key] == value, key


def test_version_and_help_do_not_load_torch():
    code = "import sys, mitodet.cli.main; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    done = subprocess.run([sys.executable, "-m", "mitodet", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"mitodet {mitodet.__version__}"
