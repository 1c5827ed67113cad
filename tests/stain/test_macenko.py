import csv

import numpy as np
import pytest

from mitodet.errors import MitodetError
from mitodet.io.image import read_image
from mitodet.stain import (
    NoTissueError,
    SingleStainError,
    macenko_vectors,
    od_to_rgb,
    remix,
    rgb_to_od,
    unmix,
)
from tests.conftest import need


def test_vectors_are_h_and_e_on_a_real_tile(monuseg_tile):
    sv = macenko_vectors(monuseg_tile)
    for v in (sv.hematoxylin, sv.eosin, sv.residual):
        assert abs(np.linalg.norm(v) - 1) < 1e-5
    assert np.all(sv.hematoxylin > 0) and np.all(sv.eosin > 0)
    # hematoxylin (blue-purple) absorbs red more than eosin (pink) does; eosin is green-dominant
    assert sv.hematoxylin[0] > sv.eosin[0] + 0.1
    assert np.argmax(sv.eosin) == 1
    assert abs(sv.residual @ sv.hematoxylin) < 1e-5 and abs(sv.residual @ sv.eosin) < 1e-5
    assert 8 < sv.angle_deg < 60
    assert 0.1 < sv.tissue_fraction < 0.9


def test_reconstruction_equals_od(monuseg_tile):
    sv = macenko_vectors(monuseg_tile)
    conc = unmix(monuseg_tile, sv)
    assert conc.shape == monuseg_tile.shape and conc.dtype == np.float32
    od = rgb_to_od(monuseg_tile)
    np.testing.assert_allclose(conc @ sv.matrix, od, atol=2e-5)
    np.testing.assert_allclose(remix(conc, sv), od, atol=2e-5)
    # residual is the projection on the plane's normal; most tissue lies close to the plane
    np.testing.assert_allclose(conc[..., 2], od @ sv.residual, atol=2e-5)
    assert np.median(np.abs(conc[..., 2])) < 0.03 < np.median(conc[..., 0] + conc[..., 1])


def test_h_channel_is_high_on_icpr_mitosis_masks(shared_data):
    """Mitotic figures (ICPR 2012 masks) are hematoxylin-dense; the tissue around them is not."""
    root = shared_data / "icpr2012_patches"
    rows = csv.DictReader(open(need(root / "mitoses.csv")))
    names = sorted({r["patch"] for r in rows if int(r["n_mitoses"]) > 0})
    assert len(names) >= 15
    margins, e_lower = [], 0
    for name in names:
        rgb, _ = read_image(root / "images" / name)
        mask = read_image(root / "masks" / name)[0][..., 0] > 127
        conc = unmix(rgb, macenko_vectors(rgb))
        h, e = conc[..., 0], conc[..., 1]
        margins.append(np.median(h[mask]) - np.percentile(h[~mask], 75))
        e_lower += np.median(e[mask]) < np.median(e[~mask])
    margins = np.array(margins)
    assert np.median(margins) > 0.5, margins
    assert np.mean(margins > 0) >= 0.9, margins
    assert e_lower >= 0.8 * len(names)


def test_no_tissue_is_a_clear_error(monuseg_tile):
    blank = np.full((300, 300, 3), 245, np.uint8)
    blank[:10, :10] = monuseg_tile[:10, :10]  # a few real pixels are not enough
    with pytest.raises(NoTissueError, match="no tissue"):
        macenko_vectors(blank)
    assert issubclass(NoTissueError, MitodetError) and issubclass(NoTissueError, ValueError)


@pytest.mark.parametrize("keep", [0, 1])
def test_single_stain_is_a_clear_error(monuseg_tile, keep):
    # the real tile re-rendered with only its hematoxylin (or only its eosin)
    sv = macenko_vectors(monuseg_tile)
    conc = unmix(monuseg_tile, sv)
    only = np.zeros_like(conc)
    only[..., keep] = conc[..., keep]
    with pytest.raises(SingleStainError, match="single stain"):
        macenko_vectors(od_to_rgb(remix(only, sv)))


def test_vectors_stable_under_subsampling_and_flip(monuseg_tile):
    a = macenko_vectors(monuseg_tile)
    b = macenko_vectors(np.ascontiguousarray(monuseg_tile[::-1, ::2]))
    assert a.hematoxylin @ b.hematoxylin > 0.995 and a.eosin @ b.eosin > 0.995
