"""The MITOS-ATYPIA-14 frames as whole labelled fields, read from the real files."""

from __future__ import annotations

import csv
import shutil

import pytest

from mitodet.data.fields import MITOS_ATYPIA14_MPP, load_mitos_atypia14
from mitodet.data.load import load_any
from mitodet.data.split import split_dataset
from mitodet.errors import MitodetError
from mitodet.schema import Dataset
from tests.conftest import need


@pytest.fixture(scope="module")
def frames(shared_data):
    return need(shared_data / "mitos_atypia14")


def test_every_frame_and_label_is_read(frames):
    ds = load_any(frames)
    assert ds.name == "MITOS-ATYPIA-14 fields" and len(ds.images) == 96
    assert ds.count("mitotic figure") == 135 and ds.count("not mitotic figure") == 437
    rec = ds.images[0]
    assert rec.width == 1539 and rec.height == 1376 and rec.mpp == MITOS_ATYPIA14_MPP
    assert rec.domain["labels"] == "exhaustive" and rec.id == f"ma14_{rec.domain['source_image']}"
    weights = sorted({p.weight for r in ds.images for p in r.mitoses})
    assert weights == [0.5, 1.0]  # confidence 0.65 down-weighted, 0.8 / 1.0 full
    low = sum(1 for r in ds.images for p in r.mitoses if p.weight < 1)
    assert low == 67
    assert all(p.weight == 1.0 for r in ds.images for p in r.imposters)


def test_split_by_frame_spreads_the_mitoses(frames):
    ds = load_mitos_atypia14(frames)
    train, val = split_dataset(Dataset("f", ds.images), 0.2, seed=0, stratify=("source", "scanner"))
    assert len(val) == 19 and not set(train) & set(val)
    by_id = {r.id: r for r in ds.images}
    n_val = sum(len(by_id[i].mitoses) for i in val)
    assert 0.1 < n_val / 135 < 0.3  # about a fifth of the mitoses, not all in one place


def test_bad_label_table_is_one_line(frames, tmp_path):
    (tmp_path / "frames").mkdir()
    shutil.copy(frames / "frames" / "A03_00Aa.jpg", tmp_path / "frames")
    row = {"frame": "A03_00Aa", "x": "10", "y": "10", "label": "maybe", "confidence": "1"}
    for change, message in (({}, "line 2: unknown label 'maybe'"), ({"label": "mitosis", "x": "5000"}, "outside")):
        row.update(change)
        with open(tmp_path / "labels.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            w.writeheader()
            w.writerow(row)
        with pytest.raises(MitodetError, match=message):
            load_mitos_atypia14(tmp_path)
