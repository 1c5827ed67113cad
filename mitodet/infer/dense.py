"""Dense application of a valid-convolution network to images of any size.

The network maps an ``rf x rf`` window to one output cell and has output stride 2,
so tiles whose output blocks abut and whose input windows overlap by ``rf - 2``
pixels (tile starts at even pixels, i.e. on the max-pool grid) give a stitched map
identical to applying the network to the whole image at once (tested). All tiles
have one shape (sizes are balanced so the last one barely overlaps its neighbour),
so they are batched. A reflection border (``pad``) is applied per tile, only where a
tile crosses the image edge, so no padded copy of the image is made: memory is
bounded by the tile size and the output map.

A cell's value does not depend on the tile it was computed in: the convolutions give the
same logits whatever the tile shape (tested), and the probability is taken cell by cell
(:func:`probability`), so maps computed over different tilings or windows agree bit for bit.
That is what lets the agreement cascade run the second model only in windows and still
equal the full ensemble, and a cluster split a slide anywhere.

``need`` (a boolean map of output cells, e.g. the tissue mask) skips tiles with no needed
cell; cells not needed are 0 whether or not their tile ran, so the map does not depend on
the tiling either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit

from mitodet.model.protocol import DenseNet
from mitodet.reflect import padded_window
from mitodet.settings import DEFAULT_BATCH, DEFAULT_TILE

# DEFAULT_TILE / DEFAULT_BATCH (mitodet.settings, re-exported here) were chosen by
# benchmarks/bench_tiles.py on 2 CPU cores: one 512-pixel tile per forward pass keeps every
# activation in cache-friendly sizes (1024 x 4 was 2-3x slower, with 2-4x the memory).


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

    def to_cell(self, x, y):
        """Input image (x, y) -> fractional cell indices (row i, column j)."""
        return (np.asarray(y, float) - self.y0) / self.step_y, (np.asarray(x, float) - self.x0) / self.step_x


def probability(logits: np.ndarray) -> np.ndarray:
    """Softmax channel 1 of two-class logits ``[B, 2, h, w]``, as the logistic function of the
    logit difference, computed cell by cell (scipy's scalar loop), so a cell's value never
    depends on the array it sits in (vectorised softmax kernels round array tails differently)."""
    d = np.ascontiguousarray(logits[:, 1] - logits[:, 0], dtype=np.float32)
    return expit(d)


def tile_starts(n_out: int, t: int) -> tuple[list[int], int]:
    """Starts and size of equal tiles of at most ``t`` cells covering ``n_out`` cells, the last
    one flush with the end (sizes balanced, so the overlap with the one before is small)."""
    if n_out <= t:
        return [0], n_out
    k = -(-n_out // t)
    size = -(-n_out // k)
    return [min(i * size, n_out - size) for i in range(k)], size


def map_shape(model: DenseNet, height: int, width: int, pad: Sequence[int] = (0, 0, 0, 0)) -> tuple[int, int]:
    """(rows, columns) of the map of a ``height x width`` image extended by ``pad``."""
    top, bottom, left, right = (int(v) for v in pad)
    return model.output_size(height + top + bottom), model.output_size(width + left + right)


def run_boxes(
    model: DenseNet,
    image: np.ndarray,
    boxes: Sequence[tuple[int, int]],
    size: tuple[int, int],
    out: np.ndarray,
    batch_size: int = DEFAULT_BATCH,
    device: str | torch.device = "cpu",
    pad: Sequence[int] = (0, 0, 0, 0),
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Compute the map cells ``out[i:i+size[0], j:j+size[1]]`` for every ``(i, j)`` in ``boxes``
    (output-cell coordinates of the image extended by ``pad``), ``batch_size`` boxes per pass.
    Returns the number of input pixels the network ran on."""
    rf, stride = model.receptive_field, model.stride
    top, _, left, _ = (int(v) for v in pad)
    th, tw = size
    in_h, in_w = rf + stride * (th - 1), rf + stride * (tw - 1)
    dev = torch.device(device)
    dtype = next(model.parameters(), torch.zeros(0)).dtype  # float32 for parameter-free backends (ONNX)
    np_dtype: type[np.floating] = np.float64 if dtype == torch.float64 else np.float32
    run_numpy = getattr(model, "run_numpy", None)  # ONNX Runtime: no torch tensors on the way
    with torch.no_grad():
        for k in range(0, len(boxes), batch_size):
            chunk = boxes[k : k + batch_size]
            x = np.stack([padded_window(image, stride * i - top, stride * j - left, in_h, in_w) for i, j in chunk])
            # NHWC uint8 -> NCHW in [0, 1], in numpy (30x faster than torch's strided permute + div)
            xf: np.ndarray = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np_dtype)
            np.divide(xf, np_dtype(255), out=xf)
            if run_numpy is not None:
                logits = run_numpy(xf)
            else:
                logits = model(torch.from_numpy(xf).to(device=dev, dtype=dtype)).float().cpu().numpy()
            p = probability(logits)
            for (i, j), pm in zip(chunk, p, strict=True):
                out[i : i + th, j : j + tw] = pm
            if progress:
                progress(min(k + batch_size, len(boxes)), len(boxes))
    return len(boxes) * in_h * in_w


def dense_map(
    model: DenseNet,
    image: np.ndarray,
    tile: int = DEFAULT_TILE,
    batch_size: int = DEFAULT_BATCH,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    pad: Sequence[int] = (0, 0, 0, 0),
    need: np.ndarray | None = None,
    stats: dict | None = None,
) -> np.ndarray:
    """Mitosis probability (softmax channel 1) of every output cell of ``image`` (HxWx3 uint8).

    Output shape ``(model.output_size(H), model.output_size(W))``; cell (i, j) is centred on
    pixel ``(model.offset + stride*j, model.offset + stride*i)``. The image must be at least
    ``model.receptive_field`` on each side once extended by ``pad = (top, bottom, left, right)``
    pixels of reflection; the map is then that of ``np.pad(image, pad, mode="reflect")``
    (cell centres shifted by the top/left border), computed without building the padded copy.
    ``need``: boolean map of the cells to compute (same shape as the output); the others are 0.
    ``stats["network_px"]`` (when given) grows by the input pixels the network ran on.
    """
    rf = model.receptive_field
    h, w = map_shape(model, image.shape[0], image.shape[1], pad)
    if h <= 0 or w <= 0:
        H, W = image.shape[0] + pad[0] + pad[1], image.shape[1] + pad[2] + pad[3]
        raise ValueError(f"image {W}x{H} is smaller than the receptive field {rf}")
    if need is not None and need.shape != (h, w):
        raise ValueError(f"need mask {need.shape} does not match the map {(h, w)}")
    t = max(1, model.output_size(max(tile, rf)))  # output cells per tile side
    rows, th = tile_starts(h, t)
    cols, tw = tile_starts(w, t)
    jobs = [(i, j) for i in rows for j in cols]
    if need is not None:
        jobs = [(i, j) for i, j in jobs if need[i : i + th, j : j + tw].any()]
    out = np.zeros((h, w), np.float32)
    n = run_boxes(model, image, jobs, (th, tw), out, batch_size, device, pad, progress)
    if stats is not None:
        stats["network_px"] = stats.get("network_px", 0) + n
    if need is not None:
        out[~need] = 0
    return out
