import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from mitodet.cli.main import app
from mitodet.errors import MitodetError
from mitodet.io.image import read_image
from mitodet.io.negatives import read_negative_table, write_negative_table
from mitodet.mine.residual import (
    ResidualParams,
    mine_residual,
)
from mitodet.reflect import centred_window
from mitodet.schema import MITOTIC_FIGURE, NEGATIVE, Point
from tests.conftest import need

PIGMENT = "tissue/monuseg/TCGA-21-5784-01Z-00-DX1.tif"  # lung: anthracotic pigment at (856, 884)
CLEAN = "tissue/monuseg/TCGA-KB-A93J-01A-01-TS1.tif"  # lymphoid tissue, no pigment


@pytest.fixture(scope="module")
def planted(shared_data):
    """A clean real tile with a real 40x40 pigment patch pasted in, centred at (530, 530)."""
    pigment, _ = read_image(need(shared_data / PIGMENT))
    clean, _ = read_image(need(shared_data / CLEAN))
    out = clean[:700, :700].copy()
    out[510:550, 510:550] = pigment[864:904, 836:876]
    return out


def test_finds_planted_pigment_first(planted):
    mined = mine_residual(planted, 0.25, ResidualParams(per_image=3, threshold=0.0))
    assert mined and np.hypot(mined[0].x - 530, mined[0].y - 530) < 15
    assert mined[0].score > 0.06  # above the default threshold
    assert all(a.score >= b.score for a, b in zip(mined, mined[1:], strict=False))
    # with the default threshold the planted pigment is the only one kept
    kept = mine_residual(planted, 0.25, ResidualParams())
    assert len(kept) >= 1 and all(np.hypot(m.x - 530, m.y - 530) < 15 for m in kept)


def test_keeps_away_from_labelled_mitoses(planted):
    near = [Point(540.0, 525.0, MITOTIC_FIGURE)]  # 11 px = 2.7 µm from the pigment
    mined = mine_residual(planted, 0.25, ResidualParams(per_image=3, threshold=0.0), exclude=near)
    assert all(np.hypot(m.x - 540, m.y - 525) > 15.0 / 0.25 for m in mined)


def test_border_spacing_and_top_k(shared_data):
    rgb, _ = read_image(need(shared_data / PIGMENT))
    params = ResidualParams(per_image=6, threshold=0.0, spacing_um=25.0, patch=78)
    mined = mine_residual(rgb, 0.25, params)
    assert len(mined) == 6
    h, w = rgb.shape[:2]
    for m in mined:
        assert 39 <= m.x < w - 39 and 39 <= m.y < h - 39
    xy = np.array([[m.x, m.y] for m in mined])
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
    assert d[np.triu_indices(len(xy), 1)].min() >= 25.0 / 0.25
    # the anthracotic pigment is the strongest residual of this real tile
    assert np.hypot(mined[0].x - 856, mined[0].y - 884) < 20


def test_too_small_image_mines_nothing(planted):
    assert mine_residual(planted[:70, :70], 0.25, ResidualParams(threshold=0.0)) == []


def test_negative_table_round_trip(tmp_path):
    table = tmp_path / "sub" / "neg.csv"
    img = tmp_path / "a.tif"
    n = write_negative_table(table, [(img, 10.0, 20.5, 0.1), (img, 30.0, 40.0, 0.07)])
    assert n == 2
    header = table.read_text().splitlines()[0]
    assert header == "image,x,y,label,score"
    got = read_negative_table(table)
    assert got == {str(img.resolve()): [Point(10.0, 20.5, NEGATIVE), Point(30.0, 40.0, NEGATIVE)]}
    # a relative image path is read relative to the table's folder
    rel = tmp_path / "rel.csv"
    rel.write_text("image,x,y,label,score\nimgs/b.png,1,2,negative,0.2\n")
    assert list(read_negative_table(rel)) == [str((tmp_path / "imgs/b.png").resolve())]


@pytest.mark.parametrize(
    "body, problem",
    [
        ("x,y\n1,2\n", "missing column"),
        ("image,x,y,label\na.png,one,2,negative\n", "not numbers"),
        ("image,x,y,label\na.png,1,2,mitotic figure\n", "not 'negative'"),
        ("image,x,y,label\na.png,-1,2,negative\n", "bad point"),
    ],
)
def test_bad_negative_tables(tmp_path, body, problem):
    bad = tmp_path / "bad.csv"
    bad.write_text(body)
    with pytest.raises(MitodetError, match=problem):
        read_negative_table(bad)
    with pytest.raises(MitodetError, match="not found"):
        read_negative_table(tmp_path / "none.csv")


def test_centred_window_mirrors_at_border(planted):
    c = centred_window(planted, 2, 3, 64)
    assert c.shape == (64, 64, 3)
    np.testing.assert_array_equal(centred_window(planted, 100, 120, 64), planted[88:152, 68:132])


def test_cli_mine_residual_end_to_end(shared_data, tmp_path):
    pig, clean = need(shared_data / PIGMENT), need(shared_data / CLEAN)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"image,x,y,label\n{pig.name},856,884,mitotic figure\n")
    out, sheet = tmp_path / "neg.csv", tmp_path / "sheet.png"
    runner = CliRunner()
    args = ["mine", "residual", str(pig), str(clean), "--out", str(out), "--sheet", str(sheet), "--mpp", "0.25"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    table = read_negative_table(out)
    assert str(pig.resolve()) in table and sheet.stat().st_size > 1000
    assert any(np.hypot(p.x - 856, p.y - 884) < 20 for p in table[str(pig.resolve())])
    assert all(len(v) <= 5 for v in table.values())
    res = runner.invoke(
        app, ["mine", "residual", str(pig), "--out", str(out), "--labels", str(labels), "--mpp", "0.25"]
    )
    assert res.exit_code == 0, res.output
    kept = read_negative_table(out).get(str(pig.resolve()), [])
    assert all(np.hypot(p.x - 856, p.y - 884) > 60 for p in kept)
    rows = list(csv.DictReader(open(out)))
    assert all(r["label"] == "negative" and float(r["score"]) >= 0.06 for r in rows)


def test_cli_mine_residual_bad_input(tmp_path):
    res = CliRunner().invoke(app, ["mine", "residual", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "o.csv")])
    assert res.exit_code != 0 and isinstance(res.exception, MitodetError)
    assert "file not found" in str(res.exception)


def test_true_mitoses_are_not_residual(shared_data):
    """The paper's premise on real MIDOG 2021 mitoses: their centres stay below the default threshold."""
    root = need(shared_data / "midog21_crops")
    rows = list(csv.DictReader(open(root / "crops.csv")))[::40]
    from mitodet.mine.residual import residual_intensity

    peaks = []
    for r in rows:
        rgb, _ = read_image(root / r["file"])
        intensity, _ = residual_intensity(rgb, 0.25)
        peaks.append(intensity[60:68, 60:68].max())
    assert len(peaks) >= 40
    assert np.mean(np.array(peaks) > ResidualParams().threshold) <= 0.05, sorted(peaks)[-5:]


# -- issue 12, item 8: mine residual --labels is checked --------------------------------------------
@pytest.mark.parametrize(
    "content, words",
    [
        (None, ["labels.csv"]),  # a binary file: a real PNG named .csv
        ("image,x,y,label\n{name},nan,3,mitotic figure\n", ["labels.csv", "line 2", "finite"]),
        ("image,x,y\n{name},5,inf\n", ["labels.csv", "line 2", "finite"]),
        ("image,x,y\n{name},-inf,1\n", ["labels.csv", "line 2"]),
        ("image,x,y\n{name},five,3\n", ["labels.csv", "line 2", "not a number"]),
        ("image,x,y\n{name},5\n", ["labels.csv", "line 2"]),
        ("x,y\n5,3\n", ["labels.csv", "image"]),
        ("image,x,y\n\x00\x00,1,2\n", ["labels.csv", "NUL"]),
        ("image,x,y,label\n{name},1,2,cat\n", ["labels.csv", "cat"]),
    ],
)
def test_mine_residual_bad_labels_are_one_line(cli, shared_data, tmp_path, content, words):
    from tests.conftest import one_error_line

    tile = need(shared_data / PIGMENT)
    labels = tmp_path / "labels.csv"
    if content is None:
        labels.write_bytes(need(shared_data / "midog21_crops/images/MIDOG21_6.png").read_bytes())
    else:
        labels.write_text(content.format(name=tile.name))
    code, out, err = cli("mine", "residual", tile, "--mpp", "0.25", "--out", tmp_path / "n.csv", "--labels", labels)
    one_error_line(code, err, *words)
    assert not (tmp_path / "n.csv").exists()


def test_mine_residual_labels_folder_with_nan_geojson(cli, shared_data, tmp_path):
    from tests.conftest import one_error_line

    tile = need(shared_data / PIGMENT)
    (tmp_path / "lab").mkdir()
    bad = '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [NaN, 2]}}'
    (tmp_path / "lab" / f"{tile.stem}.geojson").write_text(bad)
    code, out, err = cli(
        "mine", "residual", tile, "--mpp", "0.25", "--out", tmp_path / "n.csv", "--labels", tmp_path / "lab"
    )
    one_error_line(code, err, ".geojson", "finite")


def test_mine_residual_labels_matching_nothing_are_reported(cli, shared_data, tmp_path):
    tile = need(shared_data / CLEAN)
    (tmp_path / "labels.csv").write_text("image,x,y\nother.tif,5,3\n")
    code, out, err = cli(
        "mine", "residual", tile, "--mpp", "0.25", "--out", tmp_path / "n.csv", "--labels", tmp_path / "labels.csv"
    )
    assert code == 0, err
    assert err.startswith("warning: --labels") and "no labelled mitosis matches" in err


# -- issue 12, item 10: paths as given, no assumed spacing ----------------------------------------------
def test_mined_table_keeps_paths_as_given(cli, shared_data, tmp_path, monkeypatch):
    """Written relative to the table, as the user spelled them: no absolute, symlink-resolved paths
    (the table is read back to the same files)."""
    (tmp_path / "data").symlink_to(need(shared_data))
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("mine", "residual", f"data/{PIGMENT}", "--mpp", "0.25", "--out", "runs/mined/n.csv")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "runs/mined/n.csv")))
    assert rows and {r["image"] for r in rows} == {f"../../data/{PIGMENT}"}
    table = read_negative_table(tmp_path / "runs/mined/n.csv")
    assert list(table) == [str((shared_data / PIGMENT).resolve())]


def test_mine_residual_needs_a_spacing_as_detect_does(cli, shared_data, tmp_path):
    from tests.conftest import one_error_line

    code, out, err = cli("mine", "residual", need(shared_data / CLEAN), "--out", tmp_path / "n.csv")
    one_error_line(code, err, CLEAN.split("/")[-1], "--mpp")
    code, out, err = cli("detect", need(shared_data / CLEAN), "--out", tmp_path / "d")
    one_error_line(code, err, CLEAN.split("/")[-1], "--mpp")
