"""Whole labelled fields in training: every cell of a frame a negative of kind "field", the
bundled pair's split kept for the crops, and the official F1 of the held-back frames."""

from __future__ import annotations

import json

import pytest

from mitodet.train.config import config_from_dict
from mitodet.train.data import labelled_records, split_records, train_val_images
from mitodet.train.patches import KINDS
from mitodet.train.validate import density_report, fields_f1
from tests.conftest import need
from tests.train.conftest import tiny_raw


@pytest.fixture(scope="module")
def cfg(shared_data, small_crops, tmp_path_factory):
    frames = need(shared_data / "mitos_atypia14")
    crops_split = tmp_path_factory.mktemp("split") / "split.json"
    raw = tiny_raw(small_crops, train={"mode": "dense"})
    raw["data"].update(fields=str(frames), field_grid=64, field_oversample=3)
    raw["split"]["stratify"] = ["source", "scanner"]
    cfg = config_from_dict(raw, check_paths=False)
    recs = [r for r in labelled_records(cfg) if r.domain["source"] != "mitos_atypia14"]
    ids = sorted(r.id for r in recs)
    crops_split.write_text(json.dumps({"train": ids[:-10], "val": ids[-10:]}))
    raw["split"]["file"] = str(crops_split)
    return config_from_dict(raw, check_paths=False)


def test_new_source_joins_a_fixed_split(cfg):
    split = split_records(cfg, labelled_records(cfg))
    frames_val = [i for i in split.val_ids if i.startswith("ma14_")]
    crops_val = [i for i in split.val_ids if not i.startswith("ma14_")]
    assert len(crops_val) == 10  # the file's crops split is kept ...
    assert len(frames_val) == 19  # ... and the frames, unknown to it, split 80/20 by frame
    assert len([i for i in split.train_ids if i.startswith("ma14_")]) == 77


def test_frames_are_held_whole_with_field_negatives(cfg):
    records = [r for r in labelled_records(cfg) if r.id.startswith("ma14_")][:3]
    split = split_records(cfg.model_copy(update={"split": cfg.split.model_copy(update={"file": None})}), records)
    split.train_ids, split.val_ids = [r.id for r in records], []
    train, _ = train_val_images(cfg, split)
    kind = KINDS.index("field")
    for im, rec in zip(train, records, strict=True):
        assert im.id == rec.id and im.pixels.shape[0] > 1300  # the whole frame, resampled 0.2455 -> 0.25
        assert im.negatives and all(k in (kind, KINDS.index("imposter")) for _, _, k in im.negatives)
        assert len(im.positives) == 3 * len(im.mitoses)  # oversampled
        assert len(im.imposters) == len(rec.imposters) and len(im.mitosis_weight) == len(rec.mitoses)


def test_fields_f1_is_the_pooled_official_f1():
    truth = {"a": [(0.0, 0.0), (100.0, 0.0)], "b": [(0.0, 0.0)], "c": []}
    pred = {"a": [(1.0, 0.0, 0.9), (50.0, 50.0, 0.8)], "b": [(30.0, 0.0, 0.95)], "c": [(5.0, 5.0, 0.4)]}
    sc = fields_f1(truth, pred, {"a", "b", "c"}, 0.5)
    assert (sc["tp"], sc["fn"], sc["fp"]) == (1, 2, 2) and sc["f1"] == pytest.approx(2 / (2 + 2 + 2))
    area = {"a": 1.0, "b": 1.0, "c": 1.0}
    rep = density_report(truth, pred, area, {k: "g" for k in area}, 11.1, fields={"a", "b", "c"}, rule="f1_mean")
    assert rep["f1_fields"] == pytest.approx(fields_f1(truth, pred, {"a", "b", "c"}, rep["threshold"])["f1"])
    assert rep["fields_best"]["f1"] >= rep["f1_fields"]
