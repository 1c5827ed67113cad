"""Outputs are reused only when made exactly as asked now; inputs never share outputs; stacks go page by page.

Issue #12, items 2 (stale results and partial states), 3 (name collisions), 5 (multi-page TIFF)
and 9 (stale temporary files), on real pixels with two tiny models.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from mitodet.infer import inputs as inputs_mod
from mitodet.infer import plan, run
from tests.conftest import need
from tests.infer.helpers import Interrupted, Stopper, tiny_pair


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_pair(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def pair(models):
    return run.load_detectors(models, threads=1)


@pytest.fixture
def roi(shared_data, tmp_path):
    """A real tissue tile with its spacing in the TIFF tags."""
    from mitodet.io.image import read_image

    tile, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-21-5784-01Z-00-DX1.tif"))
    path = tmp_path / "in" / "roi.tif"
    path.parent.mkdir()
    tifffile.imwrite(path, tile[:320, :384], resolution=(40000, 40000), resolutionunit="CENTIMETER")
    return path


def _detect(dets, files, out, notes=None, results=None, **options):
    return run.run_inputs(
        dets,
        files,
        out,
        options=run.Options(**options),
        note=(notes.append if notes is not None else None),
        on_result=(lambda p, n, e: results.append((str(p), n, e))) if results is not None else None,
    )


def _labels(out: Path, stem: str) -> list[str]:
    doc = json.loads((out / f"{stem}.mitotic-figures.json").read_text())
    return [p["name"] for p in doc["points"]]


def test_changed_settings_models_or_input_recompute_and_say_why(models, pair, roi, tmp_path):
    out = tmp_path / "out"
    assert _detect(pair, [roi], out) == 0
    before = _labels(out, "roi").count("mitotic figure")
    results, notes = [], []
    _detect(pair, [roi], out, notes, results)  # the same again: reused
    assert results == [(str(roi), None, None)] and notes == []

    results, notes = [], []
    _detect(pair, [roi], out, notes, results, threshold=0.0)  # every candidate is now a figure
    assert notes == [f"{out / 'roi.mitotic-figures.json'}: outdated (--threshold changed); recomputing"]
    assert results[0][1] == _labels(out, "roi").count("mitotic figure") > before

    notes = []
    _detect(pair[:1], [roi], out, notes, threshold=0.0)  # one model instead of two
    assert "outdated (models, --threshold changed)" in notes[0]  # one threshold fewer
    notes = []
    _detect(pair[:1], [roi], out, notes, threshold=0.0, mpp=0.3)
    assert "--mpp changed" in notes[0]

    os.utime(roi, ns=(roi.stat().st_atime_ns, roi.stat().st_mtime_ns + 10**9))  # the file was replaced
    notes = []
    _detect(pair[:1], [roi], out, notes, threshold=0.0, mpp=0.3)
    assert "input file changed" in notes[0]
    doc = json.loads((out / "roi.mitotic-figures.json").read_text())
    assert doc["provenance"]["threshold"] == [0.0] and doc["provenance"]["mpp"] == 0.3
    assert doc["provenance"]["models"][0]["sha256"] == hashlib.sha256(models[0].read_bytes()).hexdigest()


def test_a_rewritten_input_of_the_same_size_and_mtime_is_recomputed(pair, roi, tmp_path):
    """#19 item 9: reuse is keyed on a hash of the file's first and last MB too, not size and mtime alone."""
    out = tmp_path / "out"
    assert _detect(pair, [roi], out) == 0
    st = roi.stat()
    data = bytearray(roi.read_bytes())
    data[-100:] = bytes(255 - b for b in data[-100:])  # other pixels, the same size
    roi.write_bytes(bytes(data))
    os.utime(roi, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old modification time
    assert roi.stat().st_size == st.st_size and roi.stat().st_mtime_ns == st.st_mtime_ns
    notes = []
    _detect(pair, [roi], out, notes)
    assert "input file changed" in notes[0]


def test_output_of_another_input_with_the_same_name_is_not_reused(pair, roi, tmp_path):
    """#19 item 2: a second input of the same name, run later into the same --out, neither
    overwrites the first one's outputs nor leaves summary.csv listing outputs that are gone."""
    out = tmp_path / "out"
    _detect(pair, [roi], out)
    first = (out / "roi.mitotic-figures.json").read_bytes()
    other = tmp_path / "elsewhere" / "roi.tif"
    other.parent.mkdir()
    shutil.copy(roi, other)
    results = []
    assert _detect(pair, [other], out, results=results) == 1
    assert "hold the results of another input of that name" in str(results[0][2]) and "--force" in str(results[0][2])
    assert (out / "roi.mitotic-figures.json").read_bytes() == first  # untouched
    notes, results = [], []
    assert _detect(pair, [other], out, notes, results, force=True) == 0  # replaced when asked
    doc = json.loads((out / "roi.mitotic-figures.json").read_text())
    assert doc["provenance"]["input"] == str(other.resolve())
    import csv

    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["input"] for r in rows] == [str(other)]  # the first input's row went with its outputs


def test_detects_own_pictures_are_not_inputs(pair, roi, tmp_path):
    """#19 item 3: the output folder given as input does not grow with *.overlay.png / *.tissue.png."""
    out = roi.parent  # the input folder itself as --out
    _detect(pair, [roi], out, overlay=True)
    assert (out / "roi.overlay.png").is_file() and (out / "roi.tissue.png").is_file()
    assert inputs_mod.collect_inputs([out]) == [roi]


def test_an_input_named_like_an_output_is_not_clobbered(pair, roi, tmp_path):
    """#19 item 3: roi.tif would write roi.tissue.png over an input of that name: refused in one line."""
    from PIL import Image

    victim = roi.parent / "roi.tissue.png"
    Image.open(roi).convert("RGB").crop((0, 0, 200, 200)).save(victim)
    before = victim.read_bytes()
    results = []
    assert _detect(pair, [roi, victim], roi.parent, results=results, mpp=0.25) == 1
    errors = {r[0]: r[2] for r in results}
    assert "would overwrite an input" in str(errors[str(roi)]) and errors[str(victim)] is None
    assert victim.read_bytes() == before


@pytest.fixture(scope="module")
def slide_runs(pair, shared_data, tmp_path_factory):
    """A reference run of a real slide by small regions, and an interrupted one (2 regions done)."""
    slide = need(shared_data / "wsi" / "CMU-1-Small-Region.svs")
    d = tmp_path_factory.mktemp("slide")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plan, "REGION", 256)
        _detect(pair, [slide], d / "ref", mpp=0.125)

        with pytest.raises(Interrupted):
            run.run_inputs(pair, [slide], d / "stopped", options=run.Options(mpp=0.125), executor=Stopper(pair))
    ref = {p.name: p.read_bytes() for p in (d / "ref").iterdir()}
    assert len(json.loads((d / "stopped" / f"{slide.stem}.partial.json").read_text())["regions"]) == 2
    return slide, ref, d / "stopped"


@pytest.fixture
def slide_run(slide_runs, tmp_path, monkeypatch):
    """A copy of the interrupted run's folder to resume (regions of the same small size)."""
    monkeypatch.setattr(plan, "REGION", 256)
    slide, ref, stopped = slide_runs
    out = tmp_path / "again"
    shutil.copytree(stopped, out)
    return slide, ref, out, out / f"{slide.stem}.partial.json"


def _resume(pair, slide, out, **options):
    notes, regions = [], []
    run.run_inputs(
        pair,
        [slide],
        out,
        options=run.Options(**{"mpp": 0.125, **options}),
        note=notes.append,
        on_regions=lambda p, d, t: regions.append(d),
    )
    return notes, regions[0]


def _same(ref, out):
    got = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(got) == set(ref)
    for name in ref:
        assert got[name] == ref[name], name


def test_partial_state_resumes_only_with_the_same_settings(pair, slide_run):
    slide, ref, out, partial = slide_run
    notes, done_before = _resume(pair, slide, out, threshold=0.2)  # other settings: start again
    assert done_before == 0 and "outdated (--threshold changed); starting this slide again" in notes[0]
    assert not partial.exists()


@pytest.mark.parametrize(
    "plant",
    [
        "fake-detection-without-provenance",
        "a-list",
        "bad-region-values",
        "detection-outside-its-region",
        "not-json",
    ],
)
def test_planted_or_malformed_partial_state_is_not_trusted(pair, slide_run, plant):
    slide, ref, out, partial = slide_run
    doc = json.loads(partial.read_text())
    key = next(iter(doc["regions"]))
    if plant == "fake-detection-without-provenance":
        del doc["provenance"]
        doc["regions"][key]["dets"].append([10.0, 10.0, 0.999, "mitotic figure"])
    elif plant == "a-list":
        doc = [doc]
    elif plant == "bad-region-values":
        doc["regions"][key] = {"dets": [[1.0]], "network_px": "many"}
    elif plant == "detection-outside-its-region":  # valid provenance, a figure planted far away
        doc["regions"][key]["dets"].append([1e6, 1e6, 0.999, "mitotic figure"])
    partial.write_text("{not json" if plant == "not-json" else json.dumps(doc))
    notes, done_before = _resume(pair, slide, out)
    assert done_before == 0 and len(notes) == 1 and notes[0].startswith(f"{partial}: ")
    _same(ref, out)


def test_intact_partial_state_resumes_to_the_same_bytes(pair, slide_run):
    slide, ref, out, partial = slide_run
    notes, done_before = _resume(pair, slide, out)
    assert done_before == 2 and notes == []
    _same(ref, out)


def test_unique_stems():
    stems = inputs_mod.unique_stems
    assert stems([Path("a/x.jpg"), Path("b/x.jpg")]) == ["a_x.jpg", "b_x.jpg"]
    assert stems([Path("d/img.jpg"), Path("d/img.png"), Path("d/other.jpg")]) == ["img.jpg", "img.png", "other"]
    assert stems([Path("d/X.tif"), Path("d/x.tiff")]) == ["X.tif", "x.tiff"]  # case-insensitive file systems
    assert stems([Path("d/x.jpg"), Path("e/x.jpg"), Path("d_x.jpg")]) == ["d_x.jpg", "e_x.jpg", "d_x"]


def test_inputs_with_the_same_name_get_their_own_outputs(pair, roi, tmp_path):
    """a/x.jpg + b/x.jpg, and img.jpg + img.png in one folder: every input is detected, none skipped."""
    pixels = np.asarray(Image.open(roi))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    Image.fromarray(pixels).save(a / "x.jpg", quality=95)
    Image.fromarray(pixels[::-1]).save(b / "x.jpg", quality=95)
    Image.fromarray(pixels[:, ::-1]).save(a / "img.jpg", quality=95)
    Image.fromarray(pixels).save(a / "img.png")
    results = []
    files = inputs_mod.collect_inputs([a / "x.jpg", b / "x.jpg", a, a / "img.png"])  # a/x.jpg and img.png given twice
    assert len(files) == 4
    assert _detect(pair, files, tmp_path / "out", results=results, mpp=0.25) == 0
    assert all(n is not None for _, n, _ in results) and len(results) == 4
    made = sorted(p.name for p in (tmp_path / "out").glob("*.mitotic-figures.json"))
    assert made == [f"{s}.mitotic-figures.json" for s in ("a_x.jpg", "b_x.jpg", "img.jpg", "img.png")]
    inputs = {json.loads((tmp_path / "out" / m).read_text())["provenance"]["input"] for m in made}
    assert len(inputs) == 4


def test_multi_page_tiff_stack_is_detected_page_by_page(pair, shared_data, tmp_path):
    stack = need(shared_data / "midog25_stack" / "stack_5.tiff")
    results = []
    assert _detect(pair, [stack], tmp_path / "out", results=results) == 0
    assert [r[0] for r in results] == [f"{stack} [page {i}/16]" for i in range(1, 17)]
    out = tmp_path / "out"
    pages = sorted(out.glob("stack_5-page*.mitotic-figures.json"))
    assert len(pages) == 16
    import csv

    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 16 and rows[3]["input"].endswith("[page 4/16]")
    with tifffile.TiffFile(stack) as tif:  # each page's own pixels: page 4's tissue area is page 4's
        side = tif.pages[3].shape[0] * 0.248 / 1000
    assert 0 < float(rows[3]["tissue_mm2"]) <= side * side * 1.01
    results = []
    _detect(pair, [stack], out, results=results)  # rerun: every page reused
    assert [n for _, n, _ in results] == [None] * 16


def test_stale_temporary_files_are_removed(pair, roi, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".~mitodet-partial~.roi.mitotic-figures.q1w2e3r4.json"
    stale.write_bytes(b"")
    old = stale.stat().st_mtime_ns - 3600 * 10**9
    os.utime(stale, ns=(old, old))
    _detect(pair, [roi], out)
    assert not stale.exists() and (out / "roi.mitotic-figures.json").exists()


def test_a_damaged_leftover_output_is_recomputed(pair, roi, tmp_path):
    """#19 item 13: a deeply nested leftover <stem>.mitotic-figures.json in --out does not stop the run."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "roi.mitotic-figures.json").write_text("[" * 100000 + "]" * 100000)
    results = []
    assert _detect(pair, [roi], out, results=results) == 0
    assert (
        results[0][1] is not None and json.loads((out / "roi.mitotic-figures.json").read_text())["points"] is not None
    )


def test_a_summary_only_change_resummarises_without_the_networks(pair, roi, tmp_path, monkeypatch):
    """#20 item 10: only --hotspot-mm2 changed: the stored detections are summarised again (no
    network runs), and every output is byte for byte what a fresh run with that option writes."""
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert _detect(pair, [roi], out, threshold=0.0, hotspot_mm2=2.0) == 0

    def no_network(*a, **k):
        raise AssertionError("a network ran")

    notes, totals = [], []
    with monkeypatch.context() as m:
        m.setattr(run.LocalExecutor, "_detect", no_network, raising=False)
        for d in pair:
            m.setattr(d, "detect", no_network)
        code = run.run_inputs(
            pair, [roi], out, options=run.Options(threshold=0.0, hotspot_mm2=0.005), note=notes.append,
            on_totals=totals.append,
        )  # fmt: skip
    assert code == 0 and any("only the summary changed" in n for n in notes), notes
    assert totals[0].done == 1 and totals[0].megapixels == 0
    assert _detect(pair, [roi], fresh, threshold=0.0, hotspot_mm2=0.005) == 0
    for suffix in ("mitotic-figures.json", "csv", "geojson"):
        assert (out / f"roi.{suffix}").read_bytes() == (fresh / f"roi.{suffix}").read_bytes(), suffix
    doc = json.loads((out / "roi.mitotic-figures.json").read_text())
    assert doc["summary"]["hotspot_mm2"] == 0.005 and doc["provenance"]["hotspot_mm2"] == 0.005
    notes = []
    _detect(pair, [roi], out, notes, threshold=0.5, hotspot_mm2=0.005)  # a threshold is no summary option
    assert any("recomputing" in n for n in notes), notes
