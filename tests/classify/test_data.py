import numpy as np

from mitodet.classify.data import (
    ATNORM,
    MIDOG21,
    WINDOW,
    centred_square,
    labelled_crop_records,
    read_crops,
    split_crops,
)
from mitodet.schema import Dataset
from tests.conftest import need


def test_centred_square_crops_and_pads():
    im = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    assert np.array_equal(centred_square(im, 4), im[3:7, 4:8])
    big = centred_square(im, 16)
    assert big.shape == (16, 16, 3) and np.array_equal(big[3:13, 2:14], im)  # the original, centred


def test_real_crops_at_the_model_spacing(shared_data):
    ds = labelled_crop_records(need(shared_data / "midog21_crops"), need(shared_data / "atnorm_md"))
    some = [r for r in ds if r.domain["source"] == "midog21_crops"][:6] + [
        r for r in ds if r.domain["source"] == "atnorm_md"
    ][:6]
    cs = read_crops(some)
    assert cs.windows.shape == (12, WINDOW, WINDOW, 3) and cs.windows.dtype == np.uint8
    assert cs.source == [MIDOG21] * 6 + [ATNORM] * 6
    assert set(cs.domain[:6]) <= {"Hamamatsu XR", "Hamamatsu S360", "Aperio CS2"} and cs.domain[6:] == [ATNORM] * 6
    assert cs.atypical.tolist() == [r.domain["atypical"] in ("True", "1") for r in some]
    sub = cs.subset([some[3].id, some[0].id])
    assert sub.ids == [some[3].id, some[0].id] and np.array_equal(sub.windows[1], cs.windows[0])


def test_split_by_rule_keeps_source_images_whole(shared_data, tmp_path):
    ds = labelled_crop_records(need(shared_data / "midog21_crops"), None)
    train, val = split_crops(ds, None, 0.2, seed=0)
    assert 0.15 <= len(val) / len(ds) <= 0.25
    by_id = ds.by_id()
    assert not {by_id[i].domain["source_image"] for i in train} & {by_id[i].domain["source_image"] for i in val}
    atyp = lambda ids: np.mean([by_id[i].domain["atypical"] == "True" for i in ids])  # noqa: E731
    assert abs(atyp(train) - atyp(val)) < 0.08  # stratified by label as well


def test_split_file_is_kept_and_new_crops_join_it(shared_data, tmp_path):
    from mitodet.data.split import write_split

    ds = labelled_crop_records(need(shared_data / "midog21_crops"), need(shared_data / "atnorm_md"))
    mid = [r.id for r in ds if r.domain["source"] == "midog21_crops"]
    write_split(tmp_path / "split.json", mid[10:], mid[:10])
    train, val = split_crops(ds, tmp_path / "split.json")
    assert set(mid[:10]) <= set(val) and set(mid[10:]) <= set(train)
    others = [r.id for r in ds if r.domain["source"] == "atnorm_md"]
    assert set(others) <= set(train) | set(val) and set(others) & set(val)
    assert len(train) + len(val) == len(Dataset("x", list(ds)))
