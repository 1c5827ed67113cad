import numpy as np
import pytest
import torch

from mitodet.model.export import export_onnx, fold
from mitodet.model.p4 import GroupConv, LiftingConv
from tests.model.helpers import random_model, real_image


@torch.no_grad()
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("name", ["tiny", "fast", "plain-tiny"])
def test_folded_equals_original(shared_data, name, channels_last):
    model = random_model(name)
    folded = fold(model, channels_last=channels_last)
    convs = [m for m in folded.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and not any(isinstance(m, (LiftingConv, GroupConv)) for m in folded.modules())
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    for attr in ("receptive_field", "stride", "offset", "config"):
        assert getattr(folded, attr) == getattr(model, attr)
    x = real_image(shared_data, 100)
    y = model(x)
    assert (folded(x) - y).abs().max() <= 1e-5 * max(1.0, y.abs().max())
    assert model.features[0].__class__.__name__ == "Normalize"  # the original is untouched


def test_onnx_equals_original(shared_data, tmp_path):
    import onnxruntime as ort

    model = random_model("tiny")
    path = export_onnx(model, tmp_path / "tiny.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in (16, 90):  # dynamic height/width
        x = real_image(shared_data, size)
        with torch.no_grad():
            y = model(x).numpy()
        out = sess.run(None, {"image": x.numpy()})[0]
        assert out.shape == y.shape
        assert np.abs(out - y).max() <= 1e-5 * max(1.0, np.abs(y).max())
