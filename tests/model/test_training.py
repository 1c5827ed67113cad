"""Gradients flow through the P4 layers: ``tiny`` fits real mitosis vs non-mitosis patches."""

import csv

import numpy as np
import torch
from PIL import Image

from mitodet.model import create_model


def _patches(shared_data, size):
    from tests.conftest import need

    crops = need(shared_data / "midog21_crops" / "crops.csv")
    with open(crops) as fh:
        files = [r["file"] for r in csv.DictReader(fh)][:12]
    pos = [
        np.asarray(Image.open(crops.parent / f).convert("RGB"))[
            64 - size // 2 : 64 + size // 2, 64 - size // 2 : 64 + size // 2
        ]
        for f in files
    ]
    table = need(shared_data / "icpr2012_patches" / "mitoses.csv")
    with open(table) as fh:
        empty = [r["patch"] for r in csv.DictReader(fh) if r["n_mitoses"] == "0"][:4]
    neg = [
        np.asarray(Image.open(table.parent / "images" / f).convert("RGB"))[y : y + size, x : x + size]
        for f in empty
        for y, x in ((10, 10), (120, 200), (200, 60))
    ]
    x = torch.from_numpy(np.stack(pos + neg)).permute(0, 3, 1, 2).float() / 255
    y = torch.tensor([1] * len(pos) + [0] * len(neg))
    return x, y


def test_tiny_fits_real_patches_and_stays_invariant(shared_data):
    torch.manual_seed(0)
    model = create_model("tiny", width=4, width_post=8)
    x, y = _patches(shared_data, model.receptive_field)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(80):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x)[:, :, 0, 0], y)
        loss.backward()
        opt.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        logits = model(x)[:, :, 0, 0]
        assert (logits.argmax(1) == y).float().mean() >= 0.95, loss
        for k in (1, 2, 3):  # trained weights: still exactly invariant
            torch.testing.assert_close(model(torch.rot90(x, k, (-2, -1)))[:, :, 0, 0], logits, atol=1e-4, rtol=1e-4)
