"""Dense application of a valid-convolution network to images of any size.

The network maps an ``rf x rf`` window to one output cell and has output stride 2,
so tiles whose output blocks abut and whose input windows overlap by ``rf - 2``
pixels (tile starts at even pixels, i.e. on the max-pool grid) give a stitched map
identical to applying the network to the whole image at once (tested). All tiles
have one shape (the last row/column of tiles is shifted back to end at the image
edge; the overlapping cells get the same values), so they are batched; memory is
bounded by the tile size and the output map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_TILE = 1024  # input pixels per tile side (before the receptive-field overlap)


@dataclass
class ProbabilityMap:
    """Mitosis probability per output cell; cell (i, j) is centred on image pixel
    ``(x0 + step * j, y0 + step * i)`` of the input image (after undoing padding and resampling)."""

    prob: np.ndarray  # [h, w] float32
    x0: float
    y0: float
    step: float  # input pixels between neighbouring cells

    def to_image(self, i, j):
        """Cell indices (row i, column j) -> input image (x, y) pixel coordinates."""
        return self.x0 + self.step * np.asarray(j, float), self.y0 + self.step * np.asarray(i, float)


def _starts(n_out: int, t: int) -> list[int]:
    """Output-cell starts of tiles of ``t`` cells covering ``n_out`` cells (last one flush)."""
    if n_out <= t:
        return [0]
    starts = list(range(0, n_out - t, t))
    return starts + [n_out - t]


@torch.no_grad()
def dense_map(
    model: torch.nn.Module,
    image: np.ndarray,
    tile: int = DEFAULT_TILE,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Mitosis probability (softmax channel 1) of every output cell of ``image`` (HxWx3 uint8).

    Output shape ``(model.output_size(H), model.output_size(W))``; cell (i, j) is centred on
    pixel ``(model.offset + stride*j, model.offset + stride*i)``. The image must be at least
    ``model.receptive_field`` on each side (pad it first; see :class:`mitodet.infer.Detector`).
    """
    rf, stride = model.receptive_field, model.stride
    H, W = image.shape[:2]
    h, w = model.output_size(H), model.output_size(W)
    if h <= 0 or w <= 0:
        raise ValueError(f"image {W}x{H} is smaller than the receptive field {rf}")
    t = max(1, model.output_size(max(tile, rf)))  # output cells per tile side
    th, tw = min(t, h), min(t, w)
    in_h, in_w = rf + stride * (th - 1), rf + stride * (tw - 1)
    out = np.empty((h, w), np.float32)
    jobs = [(i, j) for i in _starts(h, th) for j in _starts(w, tw)]
    dev = torch.device(device)
    dtype = next(model.parameters()).dtype
    for k in range(0, len(jobs), batch_size):
        chunk = jobs[k : k + batch_size]
        x = np.stack([image[stride * i : stride * i + in_h, stride * j : stride * j + in_w] for i, j in chunk])
        xt = torch.from_numpy(x).to(dev).permute(0, 3, 1, 2).to(dtype).div_(255)
        p = torch.softmax(model(xt).float(), dim=1)[:, 1].cpu().numpy()  # float32 map
        for (i, j), pm in zip(chunk, p):
            out[i : i + th, j : j + tw] = pm
        if progress:
            progress(min(k + batch_size, len(jobs)), len(jobs))
    return out
