"""One reflection rule for detection tiles, training windows and mining crops: np.pad(mode="reflect")."""

import numpy as np
import torch

from mitodet.reflect import centred_window, padded_window, reflect_index


def test_reflect_index_equals_np_pad_for_numpy_and_torch():
    for n in (1, 2, 3, 7):
        idx = np.arange(-20, 30)
        ref = np.pad(np.arange(n), 60, mode="reflect")[idx + 60] if n > 1 else np.zeros_like(idx)
        np.testing.assert_array_equal(reflect_index(idx, n), ref)
        np.testing.assert_array_equal(reflect_index(torch.tensor(idx), torch.tensor(n)).numpy(), ref)


def test_padded_window_matches_np_pad():
    rng = np.random.default_rng(1)
    for H, W, p in [(7, 5, 3), (5, 7, 12), (1, 4, 3), (30, 20, 9)]:  # incl. borders wider than the image
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        ref = np.pad(img, ((p, p), (p, p), (0, 0)), mode="reflect")
        for y, x, h, w in [(-p, -p, H + 2 * p, W + 2 * p), (-1, 2, 3, 3), (H - 2, W - 1, p, p), (0, 0, H, W)]:
            np.testing.assert_array_equal(padded_window(img, y, x, h, w), ref[y + p : y + p + h, x + p : x + p + w])


def test_centred_window_is_the_window_around_the_point():
    img = np.arange(50 * 40 * 3, dtype=np.int32).reshape(50, 40, 3)
    np.testing.assert_array_equal(centred_window(img, 20, 25, 8), img[21:29, 16:24])
    assert centred_window(img, 0, 0, 16).shape == (16, 16, 3)
