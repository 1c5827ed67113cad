"""Whole networks: 90° equivariance/invariance, the max-pool size rule, geometry, dense == patch-wise."""

import pytest
import torch

from mitodet.model import create_model, list_models
from tests.model.helpers import random_model, real_image


def rot(x, k):
    return torch.rot90(x, k, dims=(-2, -1))


@pytest.fixture(scope="module")
def fast():
    return random_model("fast")


@torch.no_grad()
@pytest.mark.parametrize("size", [80, 96])
def test_fast_rotates_its_output_map(shared_data, fast, size):
    x = real_image(shared_data, size)
    y = fast(x)
    n = fast.output_size(size)
    assert y.shape == (1, 2, n, n) and fast.valid_input_size(size)
    scale = y.abs().max()
    for k in (1, 2, 3):
        yk = fast(rot(x, k))
        assert (yk - rot(y, k)).abs().max() <= 1e-5 * scale
        # pooled over the map: invariant
        assert (yk.amax((-2, -1)) - y.amax((-2, -1))).abs().max() <= 1e-5 * scale


@torch.no_grad()
def test_patch_logits_are_rotation_invariant(shared_data, fast):
    x = real_image(shared_data, 78)
    y = fast(x)
    assert y.shape == (1, 2, 1, 1)
    for k in (1, 2, 3):
        torch.testing.assert_close(fast(rot(x, k)), y, atol=1e-5 * y.abs().max().item(), rtol=0)


@torch.no_grad()
@pytest.mark.parametrize("name", ["tiny", "fast"])
def test_odd_size_follows_the_pool_rule(shared_data, name):
    """Odd input: the pool drops the last row/column, so a rotated input is seen through a
    sub-window shifted by one pixel. Equivariance holds for that even-sized sub-window."""
    model = random_model(name)
    n = model.receptive_field + 9  # odd
    x = real_image(shared_data, n)
    assert not model.valid_input_size(n) and model.valid_input_size(n - 1)
    y = model(x)
    torch.testing.assert_close(y, model(x[..., : n - 1, : n - 1]))  # last row/col unused
    scale = y.abs().max()
    for k, (r0, c0) in {1: (0, 1), 2: (1, 1), 3: (1, 0)}.items():
        yk = model(rot(x, k))
        assert (yk - rot(y, k)).abs().max() > 1e-3 * scale  # the naive rule fails ...
        aligned = model(x[..., r0 : r0 + n - 1, c0 : c0 + n - 1])
        assert (yk - rot(aligned, k)).abs().max() <= 1e-5 * scale  # ... the aligned one holds


@torch.no_grad()
def test_plain_network_is_not_equivariant(shared_data):
    model = random_model("plain-tiny")
    x = real_image(shared_data, 32)
    y = model(x)
    assert (model(rot(x, 1)) - rot(y, 1)).abs().max() > 1e-2 * y.abs().max()


@pytest.mark.parametrize("name", list_models())
def test_registered_geometry(name):
    m = create_model(name)
    rf = m.receptive_field
    assert rf == (78 if "tiny" not in name else 16)
    assert m.stride == 2 and m.offset == (rf - 1) / 2
    assert m.output_size(rf) == 1 and m.output_size(rf - 1) == 0
    assert m.output_size(rf + 2 * 5) == 6 and m.output_size(rf + 2 * 5 + 1) == 6
    assert m.config == {"name": name}
    if name == "paper":
        assert 65 <= m.n_layers <= 75  # "about 70 layers"


@torch.no_grad()
def test_output_cell_sees_exactly_its_window(shared_data):
    """Perturbing input pixel p changes exactly the cells j with 2j <= p < 2j + rf."""
    model = random_model("tiny", width=6)
    rf, n = model.receptive_field, 64
    x = real_image(shared_data, n)
    y = model(x)
    for p in (0, 20, 37, 63):
        x2 = x.clone()
        x2[..., p, p] += 3.0
        changed = ((model(x2) - y).abs() > 1e-6).any(1)[0]
        rows = torch.nonzero(changed.any(1)).flatten().tolist()
        expect = [j for j in range(model.output_size(n)) if 2 * j <= p < 2 * j + rf]
        assert rows == expect, (p, rows, expect)


@torch.no_grad()
@pytest.mark.parametrize("name", ["tiny", "fast"])
def test_dense_equals_patchwise(shared_data, name):
    model = random_model(name)
    rf, s = model.receptive_field, model.stride
    x = real_image(shared_data, 128)
    dense = model(x)
    n = model.output_size(128)
    cells = (
        [(i, j) for i in range(n) for j in range(n)]
        if name == "tiny"
        else [(0, 0), (0, n - 1), (n - 1, 0), (n - 1, n - 1), (7, 19), (n // 2, n // 3)]
    )
    patches = torch.cat([x[..., s * i : s * i + rf, s * j : s * j + rf] for i, j in cells])
    patchwise = model(patches)[:, :, 0, 0]
    expected = torch.stack([dense[0, :, i, j] for i, j in cells])
    torch.testing.assert_close(patchwise, expected, atol=1e-5 * dense.abs().max().item(), rtol=0)
