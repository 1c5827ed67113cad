"""detect's ``<stem>.annotations.geojson``: the tissue outline and the hotspot circle as QuPath
annotation objects (#20 item 11), and how they read back (not as labels)."""

import json
import shutil

import numpy as np
import pytest

from mitodet.errors import MitodetError
from mitodet.io.points import read_geojson_points
from mitodet.schema import HOTSPOT_AREA, TISSUE_AREA
from tests.conftest import need
from tests.infer.helpers import tiny_pair


def _polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def test_outline_of_a_real_tissue_mask_encloses_its_area(shared_data):
    from mitodet.infer.plan import image_tissue
    from mitodet.io.image import read_image

    tile, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-21-5784-01Z-00-DX1.tif"), mpp=0.25)
    mask = image_tissue(tile, 0.25)
    rings = mask.outlines(0.25)
    assert rings and all(r.shape[1] == 2 for r in rings)
    inside = sum(_polygon_area(r) for r in rings) * (0.25 / 1000) ** 2  # mm², holes not cut out
    assert mask.area_mm2 * 0.9 <= inside <= mask.area_mm2 * 1.25
    for r in rings:  # in the tile's pixels
        assert r.min() >= -1 and r[:, 0].max() <= tile.shape[1] and r[:, 1].max() <= tile.shape[0]


@pytest.fixture(scope="module")
def detected(tmp_path_factory, shared_data):
    from mitodet.cli.main import run

    tmp = tmp_path_factory.mktemp("areas")
    a, _ = tiny_pair(tmp, threshold=0.45)
    tile = need(shared_data / "tissue" / "monuseg" / "TCGA-21-5784-01Z-00-DX1.tif")
    outs = []
    for name in ("first", "again"):
        out = tmp / name
        args = ["detect", str(tile), "--mpp", "0.25", "--out", str(out), "--model", str(a), "--threshold", "0.0"]
        with pytest.raises(SystemExit) as e:
            run([*args, "--hotspot-mm2", "0.01", "--no-atypical", "--no-report"])
        assert e.value.code == 0
        outs.append(out)
    return outs


def test_tissue_and_hotspot_are_locked_annotations_with_stable_ids(detected):
    doc = json.loads((detected[0] / "TCGA-21-5784-01Z-00-DX1.annotations.geojson").read_text())
    by_class = {}
    for f in doc["features"]:
        assert f["geometry"]["type"] == "Polygon" and f["properties"]["objectType"] == "annotation"
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) >= 4 and f["properties"]["isLocked"]
        by_class.setdefault(f["properties"]["classification"]["name"], []).append(f)
    assert by_class[TISSUE_AREA] and len(by_class[HOTSPOT_AREA]) == 1
    summary = json.loads((detected[0] / "TCGA-21-5784-01Z-00-DX1.mitotic-figures.json").read_text())["summary"]
    hs = by_class[HOTSPOT_AREA][0]
    assert hs["properties"]["name"] == f"hotspot: {summary['hotspot_figures']} mitotic figure(s) in 0.01 mm²"
    ring = np.array(hs["geometry"]["coordinates"][0])
    r_px = np.sqrt(0.01 / np.pi) * 1000 / 0.25
    centre = ring[:-1].mean(axis=0) * 0.25 / 1000
    assert np.allclose(centre, [summary["hotspot_x_mm"], summary["hotspot_y_mm"]], atol=0.002)
    assert np.allclose(np.hypot(*(ring[:-1] - ring[:-1].mean(axis=0)).T), r_px, rtol=0.01)
    again = json.loads((detected[1] / "TCGA-21-5784-01Z-00-DX1.annotations.geojson").read_text())
    assert [f["id"] for f in again["features"]] == [f["id"] for f in doc["features"]]


def test_a_qupath_export_of_points_and_areas_reads_the_points_only(detected, tmp_path):
    """Imported together and exported as one file, as QuPath does: the areas are skipped; an area
    of the user's own (not Tissue or Hotspot) is still refused, as it may be a mislabelled figure."""
    out = detected[0]
    points = json.loads((out / "TCGA-21-5784-01Z-00-DX1.geojson").read_text())["features"]
    areas = json.loads((out / "TCGA-21-5784-01Z-00-DX1.annotations.geojson").read_text())["features"]
    both = tmp_path / "export.geojson"
    both.write_text(json.dumps({"type": "FeatureCollection", "features": areas + points}))
    assert len(read_geojson_points(both)) == len(points)
    mine = dict(areas[0], properties={"objectType": "annotation", "classification": {"name": "Tumor"}})
    both.write_text(json.dumps({"type": "FeatureCollection", "features": [mine, *points]}))
    with pytest.raises(MitodetError, match="is not a Point"):
        read_geojson_points(both)


def test_evaluate_on_detects_folder_sees_no_image_named_annotations(detected, tmp_path):
    from mitodet.evaluate.sources import load_ground_truth

    truth = tmp_path / "truth"  # QuPath GeoJSON of the points, beside detect's areas file
    truth.mkdir()
    for f in detected[0].glob("*.geojson"):
        shutil.copy(f, truth)
    assert len(list(truth.iterdir())) == 2
    cases = load_ground_truth(truth, mpp=0.25)
    assert list(cases) == ["TCGA-21-5784-01Z-00-DX1"] and cases["TCGA-21-5784-01Z-00-DX1"].points


def test_every_point_lies_on_the_image_so_it_reads_back(detected):
    """A candidate at the map's edge fell half a pixel outside (x = -0.5), and then detect's own
    CSV was refused as ground truth ('negative coordinate'); centres are kept on the image."""
    from mitodet.io.points import read_point_table

    points, _ = read_point_table(detected[0] / "TCGA-21-5784-01Z-00-DX1.csv")
    assert points and min(min(p.x, p.y) for p in points) >= 0
    assert max(p.x for p in points) <= 1000 * 0.25 / 1000 and max(p.y for p in points) <= 1000 * 0.25 / 1000
