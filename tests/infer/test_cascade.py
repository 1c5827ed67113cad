"""The agreement cascade equals the full ensemble, and map cells do not depend on the tiling."""

import numpy as np
import pytest
import torch

from mitodet.infer import Detector, dense_map
from mitodet.infer.ensemble import cascade, detect_image, ensemble
from mitodet.io.image import read_image
from mitodet.model import create_model
from mitodet.model.export import fold
from mitodet.schema import MITOTIC_FIGURE, match_radius_px
from tests.conftest import need


@pytest.fixture(scope="module")
def tissue(shared_data):
    img, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-21-5784-01Z-00-DX1.tif"))
    return img[:900, :1000]


def _nets():
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        out.append(fold(create_model("tiny").eval()))
    return out


def test_float32_cells_do_not_depend_on_tile_or_batch(tissue):
    """ONNX Runtime (the default backend): bit for bit, whatever the tile and batch. (oneDNN, under
    torch, may round differently for inputs of a few dozen pixels.)"""
    from mitodet.infer.onnx import OnnxModel

    net = OnnxModel(_nets()[0], 1)
    ref = dense_map(net, tissue, tile=1000, batch_size=1)
    for tile, bs in [(40, 3), (97, 1), (256, 2)]:
        np.testing.assert_array_equal(dense_map(net, tissue, tile=tile, batch_size=bs), ref)


def test_need_mask_skips_tiles_and_zeroes_cells(tissue):
    net = _nets()[0]
    full = dense_map(net, tissue, tile=64)
    need = np.zeros_like(full, bool)
    need[10:40, 20:90] = True
    stats: dict = {}
    part = dense_map(net, tissue, tile=64, need=need, stats=stats)
    np.testing.assert_array_equal(part[need], full[need])
    assert not part[~need].any()
    all_px: dict = {}
    dense_map(net, tissue, tile=64, stats=all_px)
    assert 0 < stats["network_px"] < all_px["network_px"] / 4  # only tiles touching the needed cells ran


def _pair(tissue, backend="torch", tmp_path=None):
    a, b = _nets()
    if backend == "onnx":
        from mitodet.infer.onnx import OnnxModel

        a, b = OnnxModel(a, 1), OnnxModel(b, 1)
    A, B = Detector(a, mpp=0.25, threshold=0.5), Detector(b, mpp=0.25, threshold=0.5)
    # thresholds from the data: the first model calls a few candidates, the second agrees with most
    A.threshold = float(np.quantile([d.probability for d in A.candidates(tissue)], 0.97))
    B.threshold = float(np.quantile([d.probability for d in B.candidates(tissue)], 0.3))
    return A, B


def _check(full, cas):
    mf = [d for d in full if d.label == MITOTIC_FIGURE]
    assert mf, "the test needs mitotic figures"
    assert [d for d in cas if d.label == MITOTIC_FIGURE] == mf  # every one, bit for bit, same order
    kept = set(cas)
    assert cas == [d for d in full if d in kept]  # nothing else: a sub-list of the full ensemble


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_cascade_equals_full_ensemble(tissue, backend):
    A, B = _pair(tissue, backend)
    B.stats["network_px"] = 0
    full = ensemble(A.detect(tissue, 0.25), B.detect(tissue, 0.25), match_radius_px(0.25))
    everywhere, B.stats["network_px"] = B.stats["network_px"], 0
    cas = cascade(A, B, tissue, 0.25)
    _check(full, cas)
    assert B.stats["network_px"] < everywhere / 2  # the second model ran in windows only
    assert detect_image([A, B], tissue, 0.25) == cas
    assert detect_image([A, B], tissue, 0.25, full=True) == full


def test_cascade_with_a_tissue_mask_and_another_threshold(tissue):
    A, B = _pair(tissue)
    h, w = tissue.shape[:2]
    # 'tissue' everywhere but a band: both paths skip the same cells
    need = lambda cx, cy: (np.asarray(cy)[:, None] < 0.6 * h) | (np.asarray(cx)[None, :] > 0.7 * w)  # noqa: E731
    t = A.threshold
    full = ensemble(A.detect(tissue, 0.25, t, need=need), B.detect(tissue, 0.25, t, need=need), match_radius_px(0.25))
    _check(full, cascade(A, B, tissue, 0.25, t, need=need))
    # a lower seed floor checks more of the first model's candidates: still a sub-list, and longer
    low = cascade(A, B, tissue, 0.25, t, need=need, floor=0.1)
    _check(full, low)
    assert len(low) >= len(cascade(A, B, tissue, 0.25, t, need=need))


def test_local_maxima_equal_scikit_image():
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max

    from mitodet.infer.peaks import local_maxima

    rng = np.random.default_rng(0)
    for k in range(60):
        p = ndi.gaussian_filter(rng.random((rng.integers(2, 90), rng.integers(2, 90))).astype(np.float32), 2.0)
        if k % 2:
            p = np.round(p * 30) / 30  # plateaus: equal maxima closer than the distance
        for md, floor in [(1, 0.0), (3, 0.4), (15, 0.5)]:
            ref = peak_local_max(p, min_distance=md, threshold_abs=floor, threshold_rel=None, exclude_border=False)
            ref = ref[np.argsort(-p[ref[:, 0], ref[:, 1]], kind="stable")] if len(ref) else np.zeros((0, 2), int)
            np.testing.assert_array_equal(local_maxima(p, md, floor), ref)
