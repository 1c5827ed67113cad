"""Training from full MIDOG-format images (``data.annotations`` + ``data.images_dir``).

No full MIDOG image is available here, so the test builds a MIDOG-format data set from the
real pieces: TIFF mosaics of real 128x128 crops (0.25 µm/px in the resolution tags) and a
MIDOG.json with 50x50 boxes centred on each crop's labelled cells, shifted to the mosaic.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from mitodet.errors import MitodetError
from mitodet.io.image import read_image
from mitodet.train.config import config_from_dict
from mitodet.train.data import REGION, labelled_records
from mitodet.train.patches import KINDS
from mitodet.train.run import prepare_data, train
from mitodet.train.rundir import load_validation_set
from tests.conftest import need
from tests.train.conftest import tiny_raw

CROP = 128
# (image id, crops across, crops down): one image larger than a REGION (cut into regions), two whole
LAYOUT = ((1, 6, 5), (2, 4, 4), (3, 4, 4))


def make_midog_set(shared: Path, dest: Path) -> Path:
    """``dest/MIDOG.json`` + ``dest/images/00N.tiff`` mosaics of real crops; returns the JSON path."""
    import tifffile

    src = need(shared / "midog21_crops")
    labels = defaultdict(list)
    for r in csv.DictReader(open(src / "labels_in_crops.csv", newline="")):
        labels[r["file"]].append(r)
    files = sorted(labels)
    with_imposter = [f for f in files if any(r["category"] != "mitotic figure" for r in labels[f])]
    plain = [f for f in files if f not in with_imposter]
    (dest / "images").mkdir(parents=True)
    doc = {
        "info": {},
        "licenses": [],
        "images": [],
        "annotations": [],
        "categories": [{"id": 1, "name": "mitotic figure"}, {"id": 2, "name": "not mitotic figure"}],
    }
    ann_id = 0
    for n, (iid, nx, ny) in enumerate(LAYOUT):
        # every image gets some imposter crops, the rest of the slots plain crops
        picks = with_imposter[n :: len(LAYOUT)] + plain[n * 40 : n * 40 + nx * ny]
        picks = picks[: nx * ny]
        mosaic = np.zeros((ny * CROP, nx * CROP, 3), np.uint8)
        for k, f in enumerate(picks):
            oy, ox = (k // nx) * CROP, (k % nx) * CROP
            mosaic[oy : oy + CROP, ox : ox + CROP] = read_image(src / f, 0.25)[0]
            for r in labels[f]:
                x, y = float(r["x"]) + ox, float(r["y"]) + oy
                ann_id += 1
                doc["annotations"].append(
                    {
                        "id": ann_id,
                        "image_id": iid,
                        "category_id": 1 if r["category"] == "mitotic figure" else 2,
                        "bbox": [x - 25, y - 25, x + 25, y + 25],
                    }
                )
        name = f"{iid:03d}.tiff"
        tifffile.imwrite(
            dest / "images" / name, mosaic, photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER"
        )
        doc["images"].append({"id": iid, "file_name": name, "width": nx * CROP, "height": ny * CROP})
    (dest / "MIDOG.json").write_text(json.dumps(doc))
    return dest / "MIDOG.json"


@pytest.fixture(scope="module")
def midog_set(shared_data, tmp_path_factory) -> Path:
    return make_midog_set(shared_data, tmp_path_factory.mktemp("midog"))


def midog_raw(js: Path, **over) -> dict:
    raw = tiny_raw(Path("unused"), **over)
    raw["data"] = {"annotations": str(js), "images_dir": str(js.parent / "images"), "crop_grid": 8, "border": 8}
    raw["split"] = {"val_fraction": 0.34, "seed": 0, "stratify": ["scanner"]}  # 2 train images, 1 val
    return raw


def _region_origin(pid: str) -> tuple[int, int]:
    """(y, x) of a pool image in its full image: regions are '<id>@x0,y0' (see train.data._regions)."""
    if "@" not in pid:
        return 0, 0
    x0, y0 = map(int, pid.split("@")[1].split(","))
    return max(0, y0 - REGION // 4), max(0, x0 - REGION // 4)


def test_midog_json_records_read_with_tiff_spacing(midog_set):
    cfg = config_from_dict(midog_raw(midog_set))
    recs = labelled_records(cfg)
    assert [r.id for r in recs] == ["001.tiff", "002.tiff", "003.tiff"]
    assert all(r.domain["scanner"] == "Hamamatsu XR" and r.mpp == pytest.approx(0.25) for r in recs)
    assert sum(len(r.imposters) for r in recs) > 0


def test_patches_from_midog_images_and_training(midog_set, tmp_path):
    raw = midog_raw(midog_set, train={"epochs": 3, "steps_per_epoch": 12})
    cfg = config_from_dict(raw)
    split, train_pool, val_pool = prepare_data(cfg, None, False)
    assert len(split.train_ids) == 2 and len(split.val_ids) == 1
    by_id = {r.id: r for r in split.records}
    border = cfg.data.border
    found_pos, found_imp = defaultdict(list), defaultdict(list)
    for i, pid in enumerate(train_pool.ids):
        rec = by_id[pid.split("@")[0]]
        oy, ox = _region_origin(pid)
        mf = np.array([(p.y, p.x) for p in rec.mitoses])
        pos = train_pool.pos[train_pool.pos[:, 0] == i][:, 1:].numpy() + (oy, ox)
        found_pos[rec.id] += [tuple(p) for p in pos]
        sel = train_pool.neg[:, 0] == i
        neg = train_pool.neg[sel][:, 1:].numpy() + (oy, ox)
        kind = train_pool.neg_kind[sel].numpy()
        crop_neg = neg[kind == KINDS.index("crop")]
        assert len(crop_neg)
        d = np.sqrt(((crop_neg[:, None, :] - mf[None]) ** 2).sum(-1)).min(1)
        assert d.min() >= 30.0  # 7.5 µm at 0.25 µm/px, from every MF of the FULL image
        assert crop_neg.min() >= border and (crop_neg[:, 0] <= rec.height - 1 - border).all()
        assert (crop_neg[:, 1] <= rec.width - 1 - border).all()
        found_imp[rec.id] += [tuple(q) for q in neg[kind == KINDS.index("imposter")]]
    for rid in split.train_ids:
        rec = by_id[rid]
        want = sorted(
            (round(p.y), round(p.x))
            for p in rec.mitoses
            if border <= p.y <= rec.height - 1 - border and border <= p.x <= rec.width - 1 - border
        )
        assert sorted(found_pos[rid]) == want and want  # every MF centre exactly once, nothing else
        assert sorted(found_imp[rid]) == sorted((round(p.y), round(p.x)) for p in rec.imposters)
    assert train_pool.kind_counts()["imposter"] > 0
    assert any("@" in pid for pid in train_pool.ids)  # the large image was cut into regions
    assert val_pool.pos.shape[0] == len(by_id[split.val_ids[0]].mitoses)

    s = train(cfg, tmp_path / "run")
    with open(s.run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    data = json.loads((s.run_dir / "data.json").read_text())
    assert data["train"]["negatives"]["imposter"] == train_pool.kind_counts()["imposter"]
    val = load_validation_set(s.run_dir)
    assert [v.id for v in val] == split.val_ids and val[0].image.shape == (512, 512, 3)
    assert val[0].mpp == pytest.approx(0.25) and len(val[0].points) == val_pool.pos.shape[0]


def test_missing_image_is_one_line_error(midog_set, tmp_path):
    doc = json.loads(midog_set.read_text())
    doc["images"].append({"id": 4, "file_name": "004.tiff", "width": 512, "height": 512})
    js = tmp_path / "MIDOG.json"
    js.write_text(json.dumps(doc))
    raw = midog_raw(js)
    raw["data"]["images_dir"] = str(midog_set.parent / "images")
    with pytest.raises(MitodetError, match="004.tiff"):
        labelled_records(config_from_dict(raw))
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    r = subprocess.run(
        [sys.executable, "-m", "mitodet.cli.main", "train", str(cfg), "--run-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert r.stderr.startswith(f"error: {js}:") and "004.tiff" in r.stderr
    assert not (tmp_path / "run").exists()  # before any work


def test_bundled_midog_config_trains_from_the_layout(midog_set, tmp_path, monkeypatch):
    """configs/midog-ca-rgb.yaml run from the folder holding MIDOG.json + images/ (the README's layout)."""
    config = Path(__file__).resolve().parents[2] / "configs" / "midog-ca-rgb.yaml"
    monkeypatch.chdir(midog_set.parent)
    tiny = [
        "model.name=tiny",
        "sampling.batch_size=16",
        "train.epochs=1",
        "train.steps_per_epoch=2",
        "val.negatives=50",
        "data.border=8",
        "device=cpu",
        f"out={tmp_path}",
    ]
    r = subprocess.run(
        [sys.executable, "-m", "mitodet.cli.main", "train", str(config), "--quiet"]
        + [a for s in tiny for a in ("--set", s)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(config.parents[1])},
    )
    assert r.returncode == 0, r.stderr
    (run,) = tmp_path.glob("midog-ca-rgb-*")
    data = json.loads((run / "data.json").read_text())
    assert data["train_images"] + data["val_images"] == 3 and data["train"]["positives"] > 0
