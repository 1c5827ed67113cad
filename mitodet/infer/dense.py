"""Dense application of a valid-convolution network to images of any size.

The network maps an ``rf x rf`` window to one output cell and has output stride 2,
so tiles whose output blocks abut and whose input windows overlap by ``rf - 2``
pixels (tile starts at even pixels, i.e. on the max-pool grid) give a stitched map
identical to applying the network to the whole image at once (tested). All tiles
have one shape (the last row/column of tiles is shifted back to end at the image
edge; the overlapping cells get the same values), so they are batched. A reflection
border (``pad``) is applied per tile, only where a tile crosses the image edge, so no
padded copy of the image is made: memory is bounded by the tile size and the output map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mitodet.model.protocol import DenseNet
from mitodet.reflect import padded_window

DEFAULT_TILE = 1024  # input pixels per tile side (before the receptive-field overlap)


@dataclass
class ProbabilityMap:
    """Mitosis probability per output cell; cell (i, j) is centred on input-image pixel
    ``(x0 + step_x * j, y0 + step_y * i)`` (after undoing padding and resampling).

    ``shape`` is the (height, width) of the input image the map was computed for.
    """

    prob: np.ndarray  # [h, w] float32
    x0: float
    y0: float
    step_x: float  # input pixels between neighbouring cells, horizontally
    step_y: float  # ... and vertically (differ slightly when resampling rounds the size)
    shape: tuple[int, int]

    def to_image(self, i, j):
        """Cell indices (row i, column j) -> input image (x, y) pixel coordinates."""
        return self.x0 + self.step_x * np.asarray(j, float), self.y0 + self.step_y * np.asarray(i, float)


def _starts(n_out: int, t: int) -> list[int]:
    """Output-cell starts of tiles of ``t`` cells covering ``n_out`` cells (last one flush)."""
    if n_out <= t:
        return [0]
    starts = list(range(0, n_out - t, t))
    return starts + [n_out - t]


@torch.no_grad()
def dense_map(
    model: DenseNet,
    image: np.ndarray,
    tile: int = DEFAULT_TILE,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> np.ndarray:
    """Mitosis probability (softmax channel 1) of every output cell of ``image`` (HxWx3 uint8).

    Output shape ``(model.output_size(H), model.output_size(W))``; cell (i, j) is centred on
    pixel ``(model.offset + stride*j, model.offset + stride*i)``. The image must be at least
    ``model.receptive_field`` on each side once extended by ``pad = (top, bottom, left, right)``
    pixels of reflection; the map is then that of ``np.pad(image, pad, mode="reflect")``
    (cell centres shifted by the top/left border), computed without building the padded copy.
    """
    rf, stride = model.receptive_field, model.stride
    top, bottom, left, right = (int(v) for v in pad)
    H, W = image.shape[0] + top + bottom, image.shape[1] + left + right
    h, w = model.output_size(H), model.output_size(W)
    if h <= 0 or w <= 0:
        raise ValueError(f"image {W}x{H} is smaller than the receptive field {rf}")
    t = max(1, model.output_size(max(tile, rf)))  # output cells per tile side
    th, tw = min(t, h), min(t, w)
    in_h, in_w = rf + stride * (th - 1), rf + stride * (tw - 1)
    out = np.empty((h, w), np.float32)
    jobs = [(i, j) for i in _starts(h, th) for j in _starts(w, tw)]
    dev = torch.device(device)
    dtype = next(model.parameters(), torch.zeros(0)).dtype  # float32 for parameter-free backends (ONNX)
    for k in range(0, len(jobs), batch_size):
        chunk = jobs[k : k + batch_size]
        x = np.stack([padded_window(image, stride * i - top, stride * j - left, in_h, in_w) for i, j in chunk])
        xt = torch.from_numpy(x).to(dev).permute(0, 3, 1, 2).to(dtype).div_(255)
        p = torch.softmax(model(xt).float(), dim=1)[:, 1].cpu().numpy()  # float32 map
        for (i, j), pm in zip(chunk, p, strict=False):
            out[i : i + th, j : j + tw] = pm
        if progress:
            progress(min(k + batch_size, len(jobs)), len(jobs))
    return out
