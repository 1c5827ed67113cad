"""Each P4 layer type is equivariant to 90° rotations, for odd and even input sizes."""

import pytest
import torch

from mitodet.model.p4 import GroupConv, LiftingConv, P4BatchNorm, RotationPool, rotate_p4
from tests.model.helpers import randomize_norms


def rot(x, k):
    return torch.rot90(x, k, dims=(-2, -1))


@pytest.mark.parametrize("size", [9, 10])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_lifting_conv_equivariant(size, k):
    torch.manual_seed(0)
    layer = LiftingConv(3, 5, 3)
    x = torch.rand(2, 3, size, size)
    y = layer(x)
    assert y.shape == (2, 20, size - 2, size - 2)
    torch.testing.assert_close(layer(rot(x, k)), rotate_p4(y, k), atol=1e-5, rtol=0)
    # rotation acts on the P4 axis too: a plain spatial rotation is NOT the answer
    assert (layer(rot(x, k)) - rot(y, k)).abs().max() > 1e-2


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("ksize", [1, 3])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_group_conv_equivariant(size, ksize, k):
    torch.manual_seed(1)
    layer = GroupConv(3, 4, ksize)
    x = torch.randn(2, 12, size, size)
    y = layer(x)
    assert y.shape == (2, 16, size - ksize + 1, size - ksize + 1)
    torch.testing.assert_close(layer(rotate_p4(x, k)), rotate_p4(y, k), atol=1e-5, rtol=0)


def test_group_conv_is_one_ordinary_conv():
    layer = GroupConv(3, 4, 3)
    w = layer.expanded_weight()
    assert w.shape == (16, 12, 3, 3)
    # output rotation r = filter of rotation 0, rotated r times, input-rotation axis cycled by r
    w5 = w.reshape(4, 4, 3, 4, 3, 3)
    for r in range(4):
        for s in range(4):
            torch.testing.assert_close(w5[:, r, :, s], torch.rot90(layer.weight[:, :, (s - r) % 4], r, (-2, -1)))


@pytest.mark.parametrize("size", [5, 6])
def test_batch_norm_shares_statistics_across_rotations(size):
    torch.manual_seed(2)
    bn = P4BatchNorm(3)
    x = torch.randn(4, 12, size, size) * 3 + 1
    y = bn.train()(x)
    # one mean/variance per field over batch, rotations and space
    per_field = y.reshape(4, 3, 4, size, size).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_field.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_field.var(1, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    randomize_norms(bn)
    for k in (1, 2, 3):
        torch.testing.assert_close(bn(rotate_p4(x, k)), rotate_p4(bn(x), k), atol=1e-5, rtol=0)
        # training mode (batch statistics) too
        bn.train()
        torch.testing.assert_close(bn(rotate_p4(x, k)), rotate_p4(bn(x), k), atol=1e-5, rtol=0)
        bn.eval()


@pytest.mark.parametrize("mode", ["max", "mean"])
@pytest.mark.parametrize("size", [5, 6])
def test_rotation_pool_invariant(mode, size):
    x = torch.randn(2, 12, size, size)
    pool = RotationPool(mode)
    for k in (1, 2, 3):
        torch.testing.assert_close(pool(rotate_p4(x, k)), rot(pool(x), k))
    with pytest.raises(ValueError):
        RotationPool("min")


@pytest.mark.parametrize("size", [9, 10])
def test_max_pool_needs_even_size(size):
    """The 2x2 max-pool commutes with rotation only on even-sized maps (the rule of resnet.py)."""
    x = torch.randn(1, 4, size, size)
    pool = torch.nn.MaxPool2d(2, 2)
    diff = (pool(rot(x, 1)) - rot(pool(x), 1)).abs().max()
    assert (diff == 0) if size % 2 == 0 else (diff > 0)
