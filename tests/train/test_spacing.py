"""One spacing rule: a crop seen at training and the same tissue given to detection reach the
network at the same scale, with the same pixels."""

from __future__ import annotations

import numpy as np
import pytest

import mitodet.infer.detector as detector_module
from mitodet.data.crops import load_midog21_crops
from mitodet.infer import Detector
from mitodet.io.image import read_image
from mitodet.model import create_model, load_checkpoint
from mitodet.resample import to_input
from mitodet.train.config import config_from_dict
from mitodet.train.data import read_for_training
from mitodet.train.run import train
from tests.conftest import need
from tests.train.conftest import tiny_raw


@pytest.fixture(scope="module")
def xr_crop(shared_data):
    ds = load_midog21_crops(need(shared_data / "midog21_crops"))
    return next(r for r in ds if r.domain["scanner"] == "Hamamatsu XR" and len(r.mitoses) == 1)


def test_training_pixels_equal_what_detection_feeds_the_network(xr_crop, monkeypatch):
    cfg = config_from_dict(tiny_raw(xr_crop.path.parent.parent), check_paths=False)
    assert xr_crop.mpp == 0.23 and cfg.data.model_mpp == 0.25
    train_px, spacing, points = read_for_training(xr_crop.path, xr_crop.mpp, xr_crop.points, cfg.data)
    assert spacing == 0.25 and train_px.shape[0] == round(128 * 0.23 / 0.25)  # 118 px: resampled, not native
    seen = {}
    real = detector_module.dense_map

    def spy(model, image, *args, **kwargs):
        seen["x"] = image  # what reaches the network's tiling
        return real(model, image, *args, **kwargs)

    monkeypatch.setattr(detector_module, "dense_map", spy)
    pixels, _ = read_image(xr_crop.path)
    det = Detector(create_model("tiny"), mpp=0.25, interpolation=cfg.data.interpolation)
    det.probability_map(pixels, xr_crop.mpp)  # `mitodet detect --mpp 0.23` on the same crop
    np.testing.assert_array_equal(seen["x"], train_px)
    # the labelled mitosis maps back onto itself: training coordinates -> detection input coordinates
    (mf,) = [p for p in points]
    sx = pixels.shape[1] / train_px.shape[1]
    x, y = to_input(mf.x, mf.y, sx, pixels.shape[0] / train_px.shape[0])
    assert abs(x - xr_crop.mitoses[0].x) < 1e-6 and abs(y - xr_crop.mitoses[0].y) < 1e-6


def test_native_pixels_when_resampling_is_off(xr_crop):
    raw = tiny_raw(xr_crop.path.parent.parent)
    raw["data"]["resample"] = False
    cfg = config_from_dict(raw, check_paths=False)
    px, spacing, points = read_for_training(xr_crop.path, xr_crop.mpp, xr_crop.points, cfg.data)
    assert px.shape[:2] == (128, 128) and spacing == 0.23 and points[0].x == 64.0


def test_checkpoint_records_the_spacing_training_used(small_crops, tmp_path):
    s = train(config_from_dict(tiny_raw(small_crops, train={"epochs": 1, "steps_per_epoch": 2})), tmp_path / "r")
    _, meta = load_checkpoint(s.run_dir / "best.pt")
    assert meta["mpp"] == 0.25 and meta["interpolation"] == "bilinear" and "resampled" in meta["training_spacing"]
    det = Detector.from_checkpoint(s.run_dir / "best.pt")
    assert det.mpp == 0.25 and det.interpolation == "bilinear"
