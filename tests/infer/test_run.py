import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mitodet.infer import plan, run
from mitodet.io.slide import open_slide
from mitodet.settings import MIN_DENSITY_MM2
from tests.conftest import need
from tests.infer.helpers import Interrupted, Stopper, tiny_pair


def test_slide_thumbnail_reads_bounded_blocks(shared_data, tmp_path, monkeypatch):
    from mitodet.io.image import read_image

    tile, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-18-5592-01Z-00-DX1.tif"))
    big = np.concatenate([tile, tile[:, ::-1]], axis=1)[:900, :1700]  # one level, no pyramid
    tifffile.imwrite(tmp_path / "s.tif", big, resolution=(40000, 40000), resolutionunit="CENTIMETER")
    monkeypatch.setattr(plan, "REGION", 256)
    with open_slide(tmp_path / "s.tif") as s:
        sizes = []
        read = s.read_region
        monkeypatch.setattr(s, "read_region", lambda x, y, w, h, m: sizes.append((w, h)) or read(x, y, w, h, m))
        thumb, f = plan.slide_thumbnail(s, max_side=1000)
        # each block's source on the only level is ~REGION level-0 pixels, never the whole slide
        assert max(max(w, h) for w, h in sizes) / f <= 256 + 1 and len(sizes) > 4
        sizes.clear()
        whole = s.read(s.mpp / f)
    assert thumb.shape == whole.shape == (round(900 * f), 1000, 3)
    assert np.abs(thumb.astype(int) - whole).mean() < 2  # same picture as one whole read


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    paths = tiny_pair(tmp_path_factory.mktemp("models"))
    return paths, run.load_detectors(paths, threads=1)  # the default backend (ONNX Runtime when installed)


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory):
    """A real slide (read as if at 0.125 µm/px: half its size at the model spacing) and a real image."""
    from mitodet.io.image import read_image

    d = tmp_path_factory.mktemp("inputs")
    tile, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-21-5784-01Z-00-DX1.tif"))
    tifffile.imwrite(d / "roi.tif", tile[:500, :640], resolution=(40000, 40000), resolutionunit="CENTIMETER")
    return [need(shared_data / "wsi" / "CMU-1-Small-Region.svs"), d / "roi.tif"]


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def test_slide_by_regions_resumes_to_the_same_bytes(detectors, inputs, tmp_path, monkeypatch):
    paths, dets = detectors
    monkeypatch.setattr(plan, "REGION", 256)
    slide = inputs[0]
    opts = run.Options(mpp=0.125)  # 1110 x 1484 model pixels: 5 x 6 regions, some without tissue
    regions, totals = [], []
    on_regions = lambda p, d, t: regions.append((d, t))  # noqa: E731
    failed = run.run_inputs(
        dets, [slide], tmp_path / "ref", options=opts, on_regions=on_regions, on_totals=totals.append
    )
    assert failed == 0 and totals[0].done == 1 and totals[0].tissue_mm2 > 0
    ref = _files(tmp_path / "ref")
    stem = slide.stem
    assert {f"{stem}.{k}" for k in ("mitotic-figures.json", "csv", "geojson", "report.html", "tissue.png")} <= set(ref)
    assert "summary.csv" in ref and f"{stem}.partial.json" not in ref
    total = regions[-1][1]
    assert 10 < total < 30 and regions[-1] == (total, total)  # background regions are not even read

    with pytest.raises(Interrupted):
        run.run_inputs(dets, [slide], tmp_path / "again", options=opts, executor=Stopper(dets))
    state = json.loads((tmp_path / "again" / f"{stem}.partial.json").read_text())
    assert len(state["regions"]) == 2
    seen = []
    run.run_inputs(dets, [slide], tmp_path / "again", options=opts, on_regions=lambda p, d, t: seen.append(d))
    assert seen[0] == 2  # resumed after the two finished regions
    assert _files(tmp_path / "again") == ref


def test_summary_positives_only_and_report_for_every_input(detectors, inputs, tmp_path, monkeypatch):
    paths, dets = detectors
    monkeypatch.setattr(plan, "REGION", 600)
    out = tmp_path / "out"
    opts = run.Options(mpp=None, positives_only=True, threshold=0.3)
    # the slide needs --mpp; the image has it in its tags: run them as two batches into one folder
    run.run_inputs(dets, [inputs[1]], out, options=opts)
    run.run_inputs(dets, [inputs[0]], out, options=run.Options(mpp=0.125, positives_only=True, threshold=0.3))
    import csv

    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [Path(r["input"]).name for r in rows] == ["roi.tif", inputs[0].name]  # one row per input, kept across runs
    for r, p in zip(rows, [inputs[1], inputs[0]], strict=True):
        doc = json.loads((out / f"{p.stem}.mitotic-figures.json").read_text())
        assert doc["summary"]["mitotic_figures"] == int(r["mitotic_figures"]) == len(doc["points"]) > 0
        assert {pt["name"] for pt in doc["points"]} == {"mitotic figure"}  # positives only
        assert int(r["candidates"]) > int(r["mitotic_figures"])
        small = float(r["tissue_mm2"]) < MIN_DENSITY_MM2  # no density for a speck of tissue
        assert float(r["tissue_mm2"]) > 0 and (r["figures_per_mm2"] == "" if small else float(r["figures_per_mm2"]) > 0)
        page = (out / f"{p.stem}.report.html").read_text()
        assert "data:image/jpeg;base64," in page and f">{r['mitotic_figures']}<" in page
    roi = rows[0]
    assert abs(float(roi["tissue_mm2"]) - 500 * 640 * 0.25**2 / 1e6) < 0.01  # all of the tile is tissue


def test_ray_local_cluster_writes_the_same_bytes(detectors, inputs, tmp_path, monkeypatch):
    """`mitodet detect ... --ray` on a local 2-CPU Ray runtime: the same files, byte for byte."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'mitodet[ray]')")
    from typer.testing import CliRunner

    from mitodet.cli.main import app

    paths, _ = detectors
    monkeypatch.setattr(plan, "REGION", 400)  # the driver plans the regions: 12 of the slide, some without tissue
    args = ["detect", *map(str, inputs), "--mpp", "0.125", "-m", str(paths[0]), "-m", str(paths[1])]
    plain = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0, plain.output
    clustered = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "ray"), "--ray=local", "--ray-cpus", "2"])
    assert clustered.exit_code == 0, clustered.output
    a, b = _files(tmp_path / "plain"), _files(tmp_path / "ray")
    assert set(a) == set(b) and len(a) == 13  # 6 outputs per input and summary.csv
    for name in a:
        assert a[name] == b[name], name


def test_a_slide_region_reports_its_tiles(detectors, inputs, tmp_path, monkeypatch):
    """#20 item 12: within a slide's region the tiles are counted, so the bar has an ETA there
    too (a region was one step of 24 s with no clock before)."""
    paths, dets = detectors
    monkeypatch.setattr(plan, "REGION", 600)
    monkeypatch.setattr(dets[0], "tile", 128, raising=False)
    tiles, regions = [], []
    run.run_inputs(
        dets, [inputs[0]], tmp_path / "o", options=run.Options(mpp=0.125), on_tiles=lambda i, t: tiles.append((i, t)),
        on_regions=lambda p, d, t: regions.append((d, t)),
    )  # fmt: skip
    n_regions = regions[-1][1]
    finished = [(i, t) for i, t in tiles if i == t]  # one completed count per region
    assert n_regions >= 2 and len(finished) == n_regions and all(t >= 1 for _, t in finished)
    assert any(0 < i < t for i, t in tiles)  # steps within a region, not only its end
