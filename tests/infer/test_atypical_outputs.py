"""What ``mitodet detect`` writes about atypical figures: P(atypical) per mitotic figure in the
CSV, the JSON and the GeoJSON (its own QuPath class), counts in the summary and the report."""

import csv
import json

import pytest

from mitodet.io.points import read_geojson_points
from mitodet.schema import MITOTIC_FIGURE
from tests.conftest import need
from tests.infer.helpers import tiny_pair


@pytest.fixture(scope="module")
def detected(tmp_path_factory, shared_data):
    from mitodet.cli.main import run

    tmp = tmp_path_factory.mktemp("atyp")
    a, b = tiny_pair(tmp, threshold=0.45)
    patch = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    outs = {}
    for name, extra in (("on", []), ("off", ["--no-atypical"]), ("strict", ["--atypical-threshold", "1.0"])):
        outs[name] = tmp / name
        args = ["detect", str(patch), "--mpp", "0.2456", "--out", str(outs[name]), "--model", str(a)]
        args += ["--threshold", "0.0", *extra]  # every candidate a mitotic figure: many to classify
        with pytest.raises(SystemExit) as e:
            run(args)
        assert e.value.code == 0
    return outs


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_output_carries_p_atypical(detected):
    out = detected["on"]
    rows = _csv(out / "A00_01_0.csv")
    summary = _csv(out / "summary.csv")[0]
    t = float(summary["atypical_threshold"])
    assert rows and all(0 <= float(r["atypical_probability"]) <= 1 for r in rows if r["label"] == MITOTIC_FIGURE)
    n_atyp = sum(float(r["atypical_probability"]) >= t for r in rows if r["label"] == MITOTIC_FIGURE)
    assert int(summary["atypical_figures"]) == n_atyp
    assert float(summary["atypical_fraction"]) == pytest.approx(n_atyp / int(summary["mitotic_figures"]), abs=1e-4)
    doc = json.loads((out / "A00_01_0.mitotic-figures.json").read_text())
    assert [p["atypical_probability"] for p in doc["points"]] == [
        pytest.approx(float(r["atypical_probability"]), abs=1e-6) for r in rows
    ]
    gj = json.loads((out / "A00_01_0.geojson").read_text())
    names = [f["properties"]["classification"]["name"] for f in gj["features"]]
    assert names == [
        "atypical mitotic figure" if float(r["atypical_probability"]) >= t else MITOTIC_FIGURE for r in rows
    ]
    assert all("atypical probability" in f["properties"]["measurements"] for f in gj["features"])
    assert all(p.label == MITOTIC_FIGURE for p in read_geojson_points(out / "A00_01_0.geojson"))  # reads back as MFs
    report = (out / "A00_01_0.report.html").read_text()
    assert "atypical mitotic figures" in report and "atypical when" in report


def test_no_atypical_leaves_it_out(detected):
    out = detected["off"]
    assert "atypical_probability" not in _csv(out / "A00_01_0.csv")[0]
    assert _csv(out / "summary.csv")[0]["atypical_figures"] == ""
    doc = json.loads((out / "A00_01_0.mitotic-figures.json").read_text())
    assert all("atypical_probability" not in p for p in doc["points"])
    assert "atypical" not in (out / "A00_01_0.report.html").read_text()


def test_geojson_ids_are_stable_uuids(detected, tmp_path):
    """#20 item 11: each feature has a UUID derived from the input and the point; reruns keep it."""
    import uuid

    gj = json.loads((detected["on"] / "A00_01_0.geojson").read_text())
    ids = [f["id"] for f in gj["features"]]
    assert len(set(ids)) == len(ids) and all(uuid.UUID(i).version == 5 for i in ids)
    again = json.loads((detected["off"] / "A00_01_0.geojson").read_text())  # another run of the same input
    assert [f["id"] for f in again["features"]] == ids


def test_a_stricter_atypical_threshold_counts_fewer(detected):
    rows = _csv(detected["strict"] / "summary.csv")[0]
    assert float(rows["atypical_threshold"]) == 1.0 and int(rows["atypical_figures"]) <= int(
        _csv(detected["on"] / "summary.csv")[0]["atypical_figures"]
    )
