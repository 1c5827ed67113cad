"""A lab's labels paired with its images, from every form evaluate --truth reads; the QuPath
round trip: GeoJSON written by detect, edited as a person would in QuPath, read back."""

import json
import shutil

import pytest

from mitodet.errors import MitodetError
from mitodet.schema import IMPOSTER, MITOTIC_FIGURE
from mitodet.train.labels import lab_labels
from tests.conftest import need
from tests.infer.helpers import tiny_pair

MPP = 0.2456


@pytest.fixture
def patches(shared_data, tmp_path):
    src = need(shared_data / "icpr2012_patches" / "images")
    out = []
    for name in ("A00_01_0.jpg", "A00_01_1.jpg", "A00_02_0.jpg"):
        shutil.copy(src / name, tmp_path / name)
        out.append(tmp_path / name)
    return out


def test_qupath_round_trip(cli, patches, tmp_path):
    a, _ = tiny_pair(tmp_path)
    code, _, err = cli("detect", *patches, "--mpp", MPP, "--out", tmp_path / "det", "--model", a, "--threshold", "0.3")
    assert code == 0, err
    exported = tmp_path / "exported"
    exported.mkdir()
    for p in patches:  # in QuPath: delete the false ones, add a missed one, mark an imposter; export
        doc = json.loads((tmp_path / "det" / f"{p.stem}.geojson").read_text())
        names = (MITOTIC_FIGURE, "atypical mitotic figure")
        kept = [f for f in doc["features"] if f["properties"]["classification"]["name"] in names][:2]
        if kept:
            kept[-1]["properties"]["classification"] = {"name": "Imposter", "color": [0, 0, 255]}
        kept.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [100.0, 120.0]},
                "properties": {"objectType": "annotation"},
            }
        )  # fmt: skip  (unnamed: a mitotic figure)
        doc["features"] = kept
        (exported / f"{p.stem}.geojson").write_text(json.dumps(doc))
    labelled = lab_labels(patches, exported, MPP)
    assert [im.path for im in labelled] == patches and all(im.mpp == MPP for im in labelled)
    for im in labelled:
        assert (100.0, 120.0, MITOTIC_FIGURE) in [(p.x, p.y, p.label) for p in im.points]
        n = len(json.loads((exported / f"{im.path.stem}.geojson").read_text())["features"])
        assert len(im.points) == n and sum(p.label == IMPOSTER for p in im.points) == (1 if n > 2 else 0)


def test_a_table_and_midog_json(patches, tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("image,x,y,label\nA00_01_0.jpg,127.5,127.6,mitotic figure\nA00_01_1.jpg,10,10,non-mitosis\n"
                     "A00_02_0.jpg,,,\n")  # fmt: skip
    labelled = lab_labels(patches, table, MPP)
    assert [len(im.points) for im in labelled] == [1, 1, 0] and labelled[1].points[0].label == IMPOSTER
    midog = tmp_path / "gt.json"
    midog.write_text(json.dumps({p.name: [[0.0313, 0.0313, 0]] for p in patches}))
    pts = lab_labels(patches, midog, MPP)[0].points
    assert pts[0].x == pytest.approx(0.0313e3 / MPP) and pts[0].label == MITOTIC_FIGURE


def test_bad_labels_are_one_line(patches, tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("image,x,y\nA00_01_0.jpg,127.5,127.6\n")
    with pytest.raises(MitodetError, match="no labels for this image"):
        lab_labels(patches, table, MPP)
    table.write_text("image,x,y\nA00_01_0.jpg,900,10\nA00_01_1.jpg,,\nA00_02_0.jpg,,\n")
    with pytest.raises(MitodetError, match="outside the 256x256 image"):
        lab_labels(patches, table, MPP)
    table.write_text("image,x,y,label\nA00_01_0.jpg,9,10,tumour cell\nA00_01_1.jpg,,,\nA00_02_0.jpg,,,\n")
    with pytest.raises(MitodetError, match="unknown class 'tumour cell'"):
        lab_labels(patches, table, MPP)
    table.write_text("image,x,y\nA00_01_0.jpg,9,10\nA00_01_1.jpg,,\nA00_02_0.jpg,,\n")
    with pytest.raises(MitodetError, match="no pixel spacing"):
        lab_labels(patches, table, None)


def _ma14_frames(shared_data, names):
    from mitodet.data.fields import load_mitos_atypia14
    from mitodet.train.labels import LabelledImage

    recs = load_mitos_atypia14(need(shared_data / "mitos_atypia14")).images
    return [LabelledImage(r.path, r.mpp, list(r.mitoses)) for r in recs if r.path.stem in names]


def test_prevalence_of_patches_cut_around_mitoses_is_flagged(shared_data):
    """ICPR 2012 patches centred on mitoses (116 per mm² over all 50) are far denser than whole
    fields: thresholds chosen there would not suit slides, and the note says so."""
    from mitodet.data.crops import load_icpr2012
    from mitodet.train.labels import LabelledImage, mitoses_per_mm2, prevalence_note

    recs = load_icpr2012(need(shared_data / "icpr2012_patches")).images
    patches = [LabelledImage(r.path, r.mpp, list(r.mitoses)) for r in recs if r.mitoses][:5]
    n = sum(im.mitoses for im in patches)
    assert mitoses_per_mm2(patches) == pytest.approx(n / (5 * 256 * 256 * MPP**2 / 1e6), rel=1e-3)
    assert "mitoses per mm²" in prevalence_note(patches)


def test_whole_fields_are_not_flagged(shared_data):
    """Three whole MITOS-ATYPIA-14 frames, with their mitoses, hold whole-field densities."""
    from mitodet.train.labels import mitoses_per_mm2, prevalence_note

    frames = _ma14_frames(shared_data, {"A03_00Aa", "A03_00Ab", "A03_00Ad"})  # 5 mitoses
    assert len(frames) == 3
    area = 3 * 1539 * 1376 * frames[0].mpp ** 2 / 1e6  # mm²
    assert mitoses_per_mm2(frames) == pytest.approx(5 / area, rel=1e-3)  # about 13
    assert prevalence_note(frames) is None
