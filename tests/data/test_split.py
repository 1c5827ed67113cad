"""The stratified, grouped, seeded split."""

from __future__ import annotations

import pytest

from mitodet.data.crops import load_midog21_crops
from mitodet.data.midog import load_midog2022_csv, load_midogpp
from mitodet.data.split import read_split, split_dataset, write_split
from mitodet.errors import MitodetError
from tests.conftest import need


def _mf(ds, ids):
    by = ds.by_id()
    return sum(len(by[i].mitoses) for i in ids)


def test_midog2022_split_matches_paper_proportions(shared_data):
    ds = load_midog2022_csv(need(shared_data / "annotations/MIDOG2022_training_tiff.csv"))
    train, val = split_dataset(ds, stratify=("tumor_type", "scanner"))
    assert (len(train), len(val)) == (283, 71)  # the paper: 283 / 71 images
    assert not set(train) & set(val) and set(train) | set(val) == {im.id for im in ds}
    assert _mf(ds, val) / ds.count("mitotic figure") == pytest.approx(1913 / 9501, abs=0.01)


def test_deterministic_and_seeded(shared_data):
    ds = load_midogpp(need(shared_data / "annotations/MIDOG++.json"))
    a, b, c = split_dataset(ds, seed=0), split_dataset(ds, seed=0), split_dataset(ds, seed=1)
    assert a == b and a != c
    train, val = a
    for scanner, n in ds.domains("scanner").items():
        n_val = sum(1 for i in val if ds.by_id()[i].domain["scanner"] == scanner)
        assert n_val == round(n * 0.2)


def test_groups_never_straddle(shared_data):
    ds = load_midog21_crops(need(shared_data / "midog21_crops"))
    train, val = split_dataset(ds, val_fraction=0.25, seed=3)
    by = ds.by_id()
    assert not {by[i].domain["source_image"] for i in train} & {by[i].domain["source_image"] for i in val}
    assert 0.15 < len(val) / len(ds) < 0.35


def test_write_read(tmp_path):
    path = tmp_path / "split.json"
    write_split(path, ["a", "b"], ["c"], seed=0)
    assert read_split(path) == (["a", "b"], ["c"])
    path.write_text('{"train": ["a"], "val": ["a"]}')
    with pytest.raises(MitodetError, match="in both train and val"):
        read_split(path)
    path.write_text("[]")
    with pytest.raises(MitodetError, match="not a split file"):
        read_split(path)
    with pytest.raises(ValueError):
        write_split(tmp_path / "x.json", ["a"], ["a"])


def test_bad_fraction(shared_data):
    ds = load_midog2022_csv(need(shared_data / "annotations/MIDOG2022_training_tiff.csv"))
    with pytest.raises(MitodetError, match="--val-fraction"):
        split_dataset(ds, val_fraction=1.5)
