"""The atypical-vs-normal classifier at work: P(atypical) of a mitotic figure from the window
around it, at the model spacing (the one spacing rule), as in training.

``AtypicalClassifier.from_checkpoint()`` loads the bundled weights; ``probabilities(windows)``
scores windows already at the model spacing, ``around(image, mpp, points)`` cuts and scores the
windows around points of an image at any spacing, and ``crop(image, mpp)`` scores one
mitosis-centred crop (the benchmark task).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from mitodet.classify.data import centred_square
from mitodet.errors import MitodetError
from mitodet.io.files import file_sha256
from mitodet.model.checkpoint import load_checkpoint
from mitodet.reflect import centred_window
from mitodet.resample import resample
from mitodet.resources import ATYPICAL_WEIGHTS

ATYPICAL, NORMAL = "atypical", "normal"


def to_tensor(windows: np.ndarray) -> torch.Tensor:
    """uint8 [N, S, S, 3] -> uint8 [N, 3, S, S]."""
    w = np.ascontiguousarray(windows)
    if not w.flags.writeable:  # e.g. straight from PIL: torch wants memory it may write
        w = w.copy()
    return torch.from_numpy(w).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def predict_windows(
    model,
    windows: torch.Tensor,
    side: int,
    tta: bool = True,
    batch: int = 128,
    on_batch: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """P(atypical) of uint8 windows [N, 3, S, S] from their centred ``side`` px (mirror-averaged);
    ``on_batch(windows done, windows)`` after each batch."""
    model.eval()
    s = windows.shape[-1]
    a = (s - side) // 2
    out = []
    for i in range(0, len(windows), batch):
        x = windows[i : i + batch, :, a : a + side, a : a + side].float() / 255.0
        p = torch.softmax(model(x), 1)[:, 1]
        if tta:
            p = (p + torch.softmax(model(x.flip(-1)), 1)[:, 1]) / 2
        out.append(p)
        if on_batch is not None:
            on_batch(min(i + batch, len(windows)), len(windows))
    return torch.cat(out).numpy() if out else np.zeros(0)


class AtypicalClassifier:
    """A trained crop classifier with its spacing, input side and calibrated threshold."""

    def __init__(self, model: torch.nn.Module, meta: dict, path: Path | None = None):
        if meta.get("kind") != "atypical":
            raise MitodetError(path, "not an atypical-vs-normal classifier (meta.kind is not 'atypical')")
        self.model = model.eval()
        self.mpp = float(meta.get("mpp") or 0.25)
        self.input = int(meta.get("input") or 96)
        self.threshold = float(meta.get("threshold", 0.5))
        self.path = path
        self.name = path.stem if path else "atypical"
        self.sha256 = file_sha256(path) if path else ""

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None) -> AtypicalClassifier:
        """Load ``path`` (default: the bundled classifier)."""
        p = Path(path) if path is not None else ATYPICAL_WEIGHTS
        model, meta = load_checkpoint(p)
        return cls(model, meta, p)

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """P(atypical) of uint8 windows [N, S, S, 3] (S >= input) at the model spacing."""
        if len(windows) == 0:
            return np.zeros(0)
        with torch.inference_mode():
            return predict_windows(self.model, to_tensor(windows), self.input)

    def label(self, p: float) -> str:
        return ATYPICAL if p >= self.threshold else NORMAL

    def crop(self, image: np.ndarray, mpp: float) -> float:
        """P(atypical) of one crop centred on a figure (``mpp``: its spacing)."""
        small = resample(image, mpp, self.mpp)[0]
        return float(self.probabilities(centred_square(small, self.input)[None])[0])

    def around(self, image: np.ndarray, mpp: float, points: Sequence[tuple[float, float]]) -> np.ndarray:
        """P(atypical) of the figures at ``points`` (pixels of ``image``, at ``mpp`` µm/px)."""
        f = self.mpp / mpp  # input px per model px
        src = int(np.ceil(self.input * f)) + 4
        wins = [
            centred_square(resample(centred_window(image, x, y, src), mpp, self.mpp)[0], self.input) for x, y in points
        ]
        return self.probabilities(np.stack(wins)) if wins else np.zeros(0)
