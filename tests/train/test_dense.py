"""Dense training: every output cell labelled from where it came from in the source image."""

from __future__ import annotations

import numpy as np
import torch

from mitodet.model import create_model
from mitodet.train.config import config_from_dict
from mitodet.train.dense import IGNORE, DenseSampler, balanced_loss, reflect_coord
from mitodet.train.patches import KINDS, PoolImage, build_pool
from mitodet.train.run import train
from tests.train.conftest import tiny_raw


def _cfg(crops, **augment):
    raw = tiny_raw(crops, train={"mode": "dense"}, sampling={"batch_size": 6}, dense={"window": 48})
    raw["augment"] = {"protocol": "none", "shift": 0, "flip": False, "elastic": {"p": 0.0}, **augment}
    return config_from_dict(raw, check_paths=False)


def _pool_with_one_mitosis(y=60.0, x=50.0):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)
    im = PoolImage("a", img, 0.25, positives=[(int(y), int(x))], mitoses=[(y, x)])
    im.negatives = [(20, 20, KINDS.index("crop"))]
    return build_pool([im])


def test_reflect_coord_mirrors_like_reflection_padding():
    n = torch.tensor([5])
    c = torch.tensor([-2.0, -0.5, 0.0, 3.5, 4.0, 5.0, 7.0])
    assert torch.allclose(reflect_coord(c, n), torch.tensor([2.0, 0.5, 0.0, 3.5, 4.0, 3.0, 1.0]))


def test_labels_follow_the_mitosis_through_flips_and_zoom(tmp_path):
    pool = _pool_with_one_mitosis()
    net = create_model("tiny")
    for aug in ({}, {"flip": True}, {"flip": True, "scale": 0.2}, {"flip": True, "elastic": {"p": 1.0, "alpha": 2.0}}):
        s = DenseSampler(pool, _cfg(tmp_path, **aug), net)
        x, (labels, weights) = s.sample()
        assert x.shape[-1] == 48 and labels.shape[-1] == net.output_size(48)
        assert net(x).shape[-2:] == labels.shape[-2:]
        pos = labels[: s.n_pos] == 1
        assert pos.any(dim=(1, 2)).all(), aug  # every positive window holds positive cells ...
        assert (labels[s.n_pos :] != 1).all()  # ... and the window far from the mitosis none
        assert ((weights > 0) == (labels >= 0)).all()


def test_positive_cells_sit_on_the_mitosis_without_augmentation(tmp_path):
    pool = _pool_with_one_mitosis(60.0, 50.0)
    net = create_model("tiny")
    s = DenseSampler(pool, _cfg(tmp_path), net)
    labels, _ = s.targets(s.draw()[3], torch.tensor([0]), torch.tensor([60]), torch.tensor([50]))
    # window [36, 84) x [26, 74); cell (i, j) is centred on window pixel offset + stride * i
    i, j = torch.nonzero(labels[0] == 1, as_tuple=True)
    cy = 60 - 24 + net.offset + net.stride * i.float()
    cx = 50 - 24 + net.offset + net.stride * j.float()
    assert (torch.hypot(cy - 60, cx - 50) <= s.pos_r + 1e-6).all() and len(i) > 0
    ignored = torch.nonzero(labels[0] == IGNORE, as_tuple=True)
    d = torch.hypot(
        60 - 24 + net.offset + net.stride * ignored[0].float() - 60,
        50 - 24 + net.offset + net.stride * ignored[1].float() - 50,
    )
    assert (d > s.pos_r).all() and (d <= s.ign_r + 1e-6).all()


def test_cells_centred_in_the_reflected_border_are_ignored(tmp_path):
    pool = _pool_with_one_mitosis()
    net = create_model("tiny")
    s = DenseSampler(pool, _cfg(tmp_path), net)
    labels, _ = s.targets(s.draw()[3], torch.tensor([0]), torch.tensor([2]), torch.tensor([2]))  # window mostly outside
    rows = 2 - 24 + net.offset + net.stride * torch.arange(labels.shape[1])
    assert (labels[0][rows < -0.5] == IGNORE).all() and (labels[0][:, rows < -0.5] == IGNORE).all()
    assert (labels[0][rows > 0][:, rows > 0] == 0).all()


def test_loss_is_class_balanced():
    out = torch.zeros(1, 2, 2, 2)
    out[0, 1, 0, 0] = 5.0  # confident positive on the one positive cell
    labels = torch.tensor([[[1, 0], [0, IGNORE]]])
    weights = torch.tensor(
        [
            [
                [
                    1.0,
                    1.0,
                ],
                [1.0, 0.0],
            ]
        ]
    )
    ce = torch.nn.functional.cross_entropy(out, labels.clamp_min(0), reduction="none")
    expected = 0.5 * ce[0, 0, 0] + 0.5 * (ce[0, 0, 1] + ce[0, 1, 0]) / 2
    assert torch.isclose(balanced_loss(out, (labels, weights)), expected)
    hardest = 0.5 * ce[0, 0, 0] + 0.5 * torch.maximum(ce[0, 0, 1], ce[0, 1, 0])
    assert torch.isclose(balanced_loss(out, (labels, weights), hard_fraction=0.5), hardest)


def test_tiny_dense_training_runs_and_learns(small_crops, tmp_path):
    raw = tiny_raw(
        small_crops,
        train={"mode": "dense", "epochs": 3, "steps_per_epoch": 8},
        sampling={"batch_size": 8},
        dense={"window": 48},
    )
    s = train(config_from_dict(raw), tmp_path / "run")
    import csv

    rows = list(csv.DictReader(open(s.run_dir / "metrics.csv")))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert (s.run_dir / "best.pt").is_file()


def test_weights_of_low_confidence_mitoses_and_imposters(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)
    im = PoolImage("a", img, 0.25, positives=[(60, 50)], mitoses=[(60.0, 50.0)], mitosis_weight=[0.5])
    im.imposters = [(20.0, 20.0)]
    im.negatives = [(20, 20, KINDS.index("imposter"))]
    pool = build_pool([im])
    net = create_model("tiny")
    raw_cfg = _cfg(tmp_path)
    cfg = raw_cfg.model_copy(update={"dense": raw_cfg.dense.model_copy(update={"imposter_weight": 3.0})})
    s = DenseSampler(pool, cfg, net)
    labels, weights = s.targets(s.draw()[3], torch.tensor([0]), torch.tensor([60]), torch.tensor([50]))
    assert (weights[labels == 1] == 0.5).all() and (labels == 1).any()
    labels, weights = s.targets(s.draw()[3], torch.tensor([0]), torch.tensor([20]), torch.tensor([20]))
    rows = 20 - 24 + net.offset + net.stride * torch.arange(labels.shape[1]).float()
    d = torch.hypot(rows[:, None] - 20, rows[None, :] - 20)
    on = (d <= s.imp_r) & (labels[0] == 0)
    assert on.any() and (weights[0][on] == 3.0).all() and (weights[0][(d > s.imp_r + 1) & (labels[0] == 0)] == 1).all()


def test_positive_weights_scale_the_positive_term():
    out = torch.zeros(1, 2, 1, 2)
    out[0, 1, 0, 0] = 5.0  # confident on the first positive, unsure on the second
    labels = torch.tensor([[[1, 1]]])
    even = balanced_loss(out, (labels, torch.tensor([[[1.0, 1.0]]])))
    low = balanced_loss(out, (labels, torch.tensor([[[1.0, 0.25]]])))
    assert low < even  # the unsure (high-loss) positive counts less
