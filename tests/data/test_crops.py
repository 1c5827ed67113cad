"""Crop, patch and tissue-tile readers on the real folders."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from mitodet.data.crops import ATNORM_MPP, load_atnorm_crops, load_icpr2012, load_midog21_crops, load_tissue
from mitodet.data.load import load_any
from mitodet.errors import MitodetError
from mitodet.schema import IMPOSTER, MITOTIC_FIGURE, Point
from tests.conftest import need


def test_midog21_crops(shared_data):
    ds = load_midog21_crops(need(shared_data / "midog21_crops"))
    assert len(ds) == 1721 and ds.count(MITOTIC_FIGURE) == 1721 + 39 and ds.count(IMPOSTER) == 11
    assert dict(ds.domains("scanner")) == {"Hamamatsu XR": 451, "Hamamatsu S360": 582, "Aperio CS2": 688}
    assert len(ds.domains("source_image")) == 135
    im = ds.by_id()["MIDOG21_7"]
    assert (
        im.path.exists()
        and im.mpp == 0.23  # Hamamatsu XR (MIDOG 2021 paper); Aperio CS2 crops are 0.25
        and im.domain["atypical"] == "True"
        and im.domain["source_image"] == "002.tiff"
    )
    assert any(p.x == 64.0 and p.y == 64.0 and p.label == MITOTIC_FIGURE for p in im.points)
    assert all(0 <= p.x < 128 and 0 <= p.y < 128 for im in ds for p in im.points)


def test_crop_spacing_follows_the_scanner(shared_data):
    ds = load_midog21_crops(need(shared_data / "midog21_crops"))
    by_scanner = {(im.domain["scanner"], im.mpp) for im in ds}
    assert by_scanner == {("Hamamatsu XR", 0.23), ("Hamamatsu S360", 0.23), ("Aperio CS2", 0.25)}


def test_atnorm_crops(shared_data):
    ds = load_atnorm_crops(need(shared_data / "atnorm_md"))
    assert len(ds) == 1475 and ds.count(MITOTIC_FIGURE) == 1475 and ds.count(IMPOSTER) == 0
    assert all(im.mpp == ATNORM_MPP and im.domain["source"] == "atnorm_md" for im in ds)
    assert all(im.points == [Point(64.0, 64.0)] and im.path.is_file() for im in ds.images[:50])
    assert set(ds.domains("atypical")) == {"True", "False"}
    assert load_any(shared_data / "atnorm_md").name == "AtNorM-MD crops"


def test_icpr2012_points_match_source_table(shared_data):
    root = need(shared_data / "icpr2012_patches")
    ds = load_icpr2012(root)
    assert len(ds) == 50 and ds.count(MITOTIC_FIGURE) == 23 and sum(1 for im in ds if im.points) == 20
    ref: dict[str, list] = {}
    for r in csv.DictReader((root / "mitoses.csv").open()):
        if r["cx"]:
            ref.setdefault(r["patch"].removesuffix(".jpg"), []).append((float(r["cx"]), float(r["cy"])))
    for im in ds:
        assert len(im.points) == len(ref.get(im.id, []))
        for p in im.points:
            assert min(np.hypot(p.x - x, p.y - y) for x, y in ref[im.id]) < 0.5
    assert ds.by_id()["A00_01_0"].mpp == pytest.approx(0.2456)


def test_icpr2012_missing_mask(tmp_path, shared_data):
    root = need(shared_data / "icpr2012_patches")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    shutil.copy(root / "images/A00_01_0.jpg", tmp_path / "images")
    with pytest.raises(MitodetError, match="mask file not found"):
        load_icpr2012(tmp_path)


def test_tissue(shared_data):
    root = need(shared_data / "tissue")
    mon, cc, both = load_tissue(root, "monuseg"), load_tissue(root, "ccmct"), load_tissue(root)
    assert (len(mon), len(cc), len(both)) == (30, 37, 67)
    assert all(not im.labelled and im.path.exists() for im in both)
    assert mon.domains("organ")["breast"] == 6 and set(mon.domains("split")) == {"train"}
    assert dict(cc.domains("species")) == {"canine": 37}
    with pytest.raises(MitodetError, match="unknown tissue set"):
        load_tissue(root, "lung")


def test_load_any(shared_data, tmp_path):
    assert load_any(need(shared_data / "midog21_crops")).name == "MIDOG 2021 crops"
    assert load_any(need(shared_data / "icpr2012_patches")).name == "ICPR 2012"
    assert len(load_any(need(shared_data / "tissue/ccmct"))) == 37
    with pytest.raises(MitodetError, match="not a known data folder"):
        load_any(tmp_path)
    with pytest.raises(MitodetError, match="not found"):
        load_any(tmp_path / "nope")


def test_crop_label_outside(tmp_path, shared_data):
    root = need(shared_data / "midog21_crops")
    (tmp_path / "crops.csv").write_text((root / "crops.csv").read_text())
    (tmp_path / "labels_in_crops.csv").write_text(
        "file,annotation_id,category,x,y,is_center\nimages/MIDOG21_6.png,6,mitotic figure,200.0,64.0,1\n"
    )
    with pytest.raises(MitodetError, match=r"point \(200, 64\) lies outside the 128x128 image"):
        load_midog21_crops(tmp_path)
