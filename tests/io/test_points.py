"""Point CSV / GeoJSON import-export."""

from __future__ import annotations

import csv
import json

import pytest

from mitodet.errors import MitodetError
from mitodet.io.points import (
    points_to_geojson,
    read_points_csv,
    read_points_geojson,
    write_points_csv,
    write_points_geojson,
)
from mitodet.schema import IMPOSTER, MITOTIC_FIGURE, NEGATIVE, Point

POINTS = [Point(10.0, 20.5, MITOTIC_FIGURE), Point(3000.25, 40.0, IMPOSTER, id=7), Point(5.0, 6.0, NEGATIVE)]


def test_csv_roundtrip_with_mm_and_scores(tmp_path):
    path = tmp_path / "det.csv"
    write_points_csv(path, POINTS, mpp=0.25, scores=[0.9, 0.4, 0.1])
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["x_px", "y_px", "x_mm", "y_mm", "probability", "label"]
    assert float(rows[1]["x_mm"]) == pytest.approx(3000.25 * 0.25 / 1000)
    assert rows[1]["label"] == "non-mitotic figure"
    back = read_points_csv(path)
    assert [(p.x, p.y, p.label) for p in back] == [(p.x, p.y, p.label) for p in POINTS]


def test_csv_without_mpp_has_no_mm_columns(tmp_path):
    path = tmp_path / "det.csv"
    write_points_csv(path, POINTS[:1])
    assert path.read_text().splitlines()[0] == "x_px,y_px,label"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("a,b\n1,2\n", "needs columns x_px,y_px"),
        ("x_px,y_px,label\n1,zz,mitotic figure\n", "line 2: not a number"),
        ("x_px,y_px,label\n1,2,cat\n", "unknown class 'cat'"),
        ("x_px,y_px\n-5,2\n", "negative coordinate"),
    ],
)
def test_csv_bad_input(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(MitodetError, match=problem) as err:
        read_points_csv(path)
    assert err.value.source == str(path)


def test_csv_missing_file(tmp_path):
    with pytest.raises(MitodetError, match="file not found"):
        read_points_csv(tmp_path / "nope.csv")


def test_geojson_is_qupath_shaped_and_roundtrips(tmp_path):
    doc = points_to_geojson(POINTS, scores=[0.9, 0.4, 0.1], measurements=[{"area": 1}, {"area": 2}, {"area": 3}])
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 3
    f = doc["features"][1]
    assert f["geometry"] == {"type": "Point", "coordinates": [3000.25, 40.0]}
    assert f["properties"]["objectType"] == "annotation"
    assert f["properties"]["classification"]["name"] == "non-mitotic figure"
    assert len(f["properties"]["classification"]["color"]) == 3
    assert f["properties"]["measurements"] == {"probability": 0.4, "area": 2.0}
    path = tmp_path / "det.geojson"
    write_points_geojson(path, POINTS, scores=[0.9, 0.4, 0.1])
    back = read_points_geojson(path)
    assert [(p.x, p.y, p.label) for p in back] == [(p.x, p.y, p.label) for p in POINTS]
    assert back[1].id == 7


def test_geojson_bad_input(tmp_path):
    path = tmp_path / "bad.geojson"
    path.write_text("{not json")
    with pytest.raises(MitodetError, match="not valid JSON"):
        read_points_geojson(path)
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": []}}],
            }
        )
    )
    with pytest.raises(MitodetError, match="is not a Point"):
        read_points_geojson(path)
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(MitodetError, match="not a GeoJSON FeatureCollection"):
        read_points_geojson(path)


def test_scores_length_must_match():
    with pytest.raises(ValueError):
        points_to_geojson(POINTS, scores=[0.1])
