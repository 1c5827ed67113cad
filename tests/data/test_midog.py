"""MIDOG 2021 / MIDOG++ / MIDOG 2022 readers on the real files, and non-MIDOG-shaped input."""

from __future__ import annotations

import copy
import json

import pytest

from mitodet.data.midog import load_annotations, load_midog2022_csv, load_midog_json, load_midogpp
from mitodet.errors import MitodetError
from mitodet.schema import IMPOSTER, MITOTIC_FIGURE
from tests.conftest import need


@pytest.fixture(scope="module")
def midog21_doc(shared_data):
    return json.loads(need(shared_data / "annotations/MIDOG.json").read_text())


def test_midog2021(shared_data):
    ds = load_midog_json(need(shared_data / "annotations/MIDOG.json"))
    assert len(ds) == 200 and ds.count(MITOTIC_FIGURE) == 1721 and ds.count(IMPOSTER) == 2714
    assert dict(ds.domains("scanner")) == {
        "Hamamatsu XR": 50,
        "Hamamatsu S360": 50,
        "Aperio CS2": 50,
        "Leica GT450": 50,
    }
    im = ds.by_id()["001.tiff"]
    assert (im.width, im.height, im.labelled) == (7215, 5412, True)
    first = next(p for p in im.points if p.id == 1)
    assert (first.x, first.y, first.label) == (4361.0, 371.0, IMPOSTER)  # bbox [4336,346,4386,396] -> centre
    gt450 = [im for im in ds if im.domain["scanner"] == "Leica GT450"]
    assert all(not im.labelled and not im.points for im in gt450)
    per_scanner = {
        s: sum(len(im.mitoses) for im in ds if im.domain["scanner"] == s)
        for s in ("Hamamatsu XR", "Hamamatsu S360", "Aperio CS2")
    }
    assert per_scanner == {"Hamamatsu XR": 451, "Hamamatsu S360": 582, "Aperio CS2": 688}


def test_midogpp(shared_data):
    need(shared_data / "annotations/datasets_xvalidation.csv")
    ds = load_midogpp(need(shared_data / "annotations/MIDOG++.json"))
    assert ds.count(MITOTIC_FIGURE) == 11937 and ds.count(IMPOSTER) == 14349
    assert len(ds.domains("tumor_type")) == 7 and sum(im.labelled for im in ds) == 503
    scanners = ds.domains("scanner")
    assert "Hamammatsu XR" not in scanners and scanners["Hamamatsu XR"] == 104 + 50
    im = ds.by_id()["260.tiff"]
    assert im.domain["species"] == "canine" and im.domain["lab"] and im.domain["scanner"] == "3D Histech"
    # Two boxes are cut by the image border: their centres are clamped onto it, not dropped.
    assert all(0 <= p.x < im.width and 0 <= p.y < im.height for im in ds for p in im.points)


def test_midog2022_csv(shared_data):
    ds = load_midog2022_csv(need(shared_data / "annotations/MIDOG2022_training_tiff.csv"))
    assert len(ds) == 354 and ds.count(MITOTIC_FIGURE) == 9501 and ds.count(IMPOSTER) == 11051
    assert sum(1 for im in ds if im.domain["split"] == "train") == 283
    assert ds.by_id()["001.tiff"].domain["scanner"] == "Hamamatsu XR"


def test_sniffing(shared_data):
    assert load_annotations(need(shared_data / "annotations/MIDOG.json")).name == "MIDOG 2021"
    assert load_annotations(need(shared_data / "annotations/MIDOG++.json")).name == "MIDOG++"
    assert load_annotations(need(shared_data / "annotations/MIDOG2022_training_tiff.csv")).name == "MIDOG 2022"


def _broken(doc, how):
    doc = copy.deepcopy(doc)
    if how == "missing key":
        del doc["annotations"]
    elif how == "bbox length":
        doc["annotations"][3]["bbox"] = [1, 2, 3]
    elif how == "unknown category":
        doc["annotations"][3]["category_id"] = 9
    elif how == "unknown category name":
        doc["categories"][0]["name"] = "cat"
    elif how == "no such image":
        doc["annotations"][3]["image_id"] = 999
    elif how == "outside":
        doc["annotations"][3]["bbox"] = [9000, 100, 9050, 150]
    elif how == "image lacks size":
        del doc["images"][0]["width"]
    return doc


@pytest.mark.parametrize(
    "how, problem",
    [
        ("missing key", "not MIDOG-shaped JSON: missing list 'annotations'"),
        ("bbox length", r"annotation 4: bbox must be \[x1, y1, x2, y2\]"),
        ("unknown category", "annotation 4: unknown category_id 9"),
        ("unknown category name", "unknown category name 'cat'"),
        ("no such image", "annotation 4: image id 999 does not exist"),
        ("outside", r"annotation 4 in 001.tiff: point \(9025, 125\) lies outside the 7215x5412 image"),
        ("image lacks size", "image entry lacks id/file_name/width/height"),
    ],
)
def test_not_midog_shaped(tmp_path, midog21_doc, how, problem):
    path = tmp_path / "MIDOG.json"
    path.write_text(json.dumps(_broken(midog21_doc, how)))
    with pytest.raises(MitodetError, match=problem) as err:
        load_annotations(path)
    assert err.value.source == str(path)


def test_not_json_and_missing(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"images": [')
    with pytest.raises(MitodetError, match="not valid JSON"):
        load_annotations(path)
    with pytest.raises(MitodetError, match="file not found"):
        load_annotations(tmp_path / "missing.json")


def test_bad_midog2022_rows(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y,label,filename\n10,20,7,001.tiff\n")
    with pytest.raises(MitodetError, match="line 2: unknown label '7'"):
        load_midog2022_csv(path)
    path.write_text("x,y,label,filename\n10,-900,1,001.tiff\n")
    with pytest.raises(MitodetError, match="lies outside the image 001.tiff"):
        load_midog2022_csv(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(MitodetError, match="not a MIDOG 2022 point table"):
        load_midog2022_csv(path)
