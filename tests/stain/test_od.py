import numpy as np
import torch

from mitodet.stain import od_to_rgb, od_to_rgb_torch, rgb_to_od, rgb_to_od_torch
from mitodet.stain.od import OD_MAX


def test_od_convention_and_exact_inverse():
    values = np.arange(256, dtype=np.uint8)
    od = rgb_to_od(values)
    assert od.dtype == np.float32
    assert od[255] == 0.0 and abs(od[0] - OD_MAX) < 1e-6
    assert np.all(np.diff(od) < 0)  # darker = more optical density
    np.testing.assert_array_equal(od_to_rgb(od), values)
    # float input follows the same formula
    np.testing.assert_allclose(rgb_to_od(values.astype(np.float32)), od, atol=1e-6)


def test_torch_versions_match_numpy():
    values = np.arange(256, dtype=np.uint8)
    od_t = rgb_to_od_torch(torch.from_numpy(values))
    np.testing.assert_allclose(od_t.numpy(), rgb_to_od(values), atol=1e-5)
    back = od_to_rgb_torch(od_t).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(back, values)
