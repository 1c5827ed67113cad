"""GPU smoke test (marked ``gpu``; skipped without CUDA): bf16 + compiled training of ``tiny`` for two
epochs, and dense detection on CUDA equal to the CPU map. Run on a GPU machine with
``pytest -m gpu tests/test_gpu.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mitodet.infer import Detector
from mitodet.io.image import read_image
from mitodet.model import load_checkpoint
from mitodet.train.config import config_from_dict
from mitodet.train.run import train
from tests.conftest import need
from tests.train.conftest import make_small_crops, tiny_raw

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_two_epochs_bf16_compiled_then_cuda_map_equals_cpu(shared_data, tmp_path):
    crops = make_small_crops(shared_data, tmp_path / "crops", 20)
    raw = tiny_raw(crops, device="cuda", train={"epochs": 2, "steps_per_epoch": 6, "amp": "bf16", "compile": True})
    s = train(config_from_dict(raw), tmp_path / "run")
    assert s.epochs == 2 and (tmp_path / "run" / "best.pt").is_file()
    model, _ = load_checkpoint(tmp_path / "run" / "best.pt")
    image, mpp = read_image(need(shared_data / "icpr2012_patches/images/A00_01_0.jpg"), 0.2456)
    cpu = Detector(model, mpp=0.25, device="cpu").probability_map(image, mpp).prob
    model, _ = load_checkpoint(tmp_path / "run" / "best.pt")
    gpu = Detector(model, mpp=0.25, device="cuda").probability_map(image, mpp).prob
    assert cpu.shape == gpu.shape
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)  # TF32/cuDNN kernels differ from oneDNN in the last bits
