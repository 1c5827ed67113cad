"""Widening a trained network (model.widen): same outputs at first, still equivariant, and
refused with a clear reason where the layouts do not match."""

from __future__ import annotations

import pytest
import torch

from mitodet.model import create_model
from mitodet.model.widen import widen_into
from tests.model.helpers import random_model, randomize_norms


def _wide(narrow: torch.nn.Module, **widths) -> torch.nn.Module:
    torch.manual_seed(1)
    wide = randomize_norms(create_model("tiny", **widths), seed=1)  # new fields carry real values
    return widen_into(narrow, wide)


@pytest.mark.parametrize("train", [False, True])
def test_the_wider_network_computes_the_narrow_ones_logits(train):
    narrow = random_model("tiny", width=4, width_post=4)
    wide = _wide(narrow, width=6, width_post=6)
    narrow.train(train), wide.train(train)
    x = torch.rand(3, 3, 40, 40)
    with torch.no_grad():
        assert torch.allclose(narrow(x), wide(x), atol=1e-5)
    # the new fields are alive: their incoming weights are not zero, and they learn
    assert wide.features[1].conv.weight[4:].abs().sum() > 0


def test_the_new_fields_get_gradients_so_training_grows_them():
    wide = _wide(random_model("tiny", width=4, width_post=4), width=6, width_post=6).train()
    wide(torch.rand(2, 3, 40, 40)).logsumexp(1).sum().backward()
    head = wide.features[-1].weight
    assert head.grad[:, 4:].abs().sum() > 0  # the head learns to read the new fields


def test_a_widened_network_stays_rotation_invariant():
    wide = _wide(random_model("tiny", width=4, width_post=4), width=6, width_post=6).eval()
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        y, y_rot = wide(x), wide(torch.rot90(x, 1, (-2, -1)))
    assert torch.allclose(torch.rot90(y, 1, (-2, -1)), y_rot, atol=1e-5)


def test_fast_widens_into_medium_exactly():
    narrow = random_model("fast")
    wide = widen_into(narrow, create_model("medium")).eval()
    x = torch.rand(1, 3, 90, 90)
    with torch.no_grad():
        assert torch.allclose(narrow(x), wide(x), atol=1e-5)


@pytest.mark.parametrize(
    ("narrow", "wide", "says"),
    [
        (dict(width=6, width_post=6), dict(width=4, width_post=4), "does not fit"),  # narrower
        (dict(width=4, width_post=4), dict(width=4, width_post=6), "different layers"),  # adds a projection
    ],
)
def test_layouts_that_do_not_widen_are_refused(narrow, wide, says):
    with pytest.raises(ValueError, match=says):
        widen_into(create_model("tiny", **narrow), create_model("tiny", **wide))
