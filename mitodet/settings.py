"""Checks of run settings: decision threshold, tile, batch size, threads, device.

One-line errors naming the setting; used by :class:`~mitodet.infer.detector.Detector` and by the
CLI's option callbacks (:mod:`mitodet.cli.options`). A ground-floor module that does not load
torch (only a CUDA/MPS device name does), so a bad option value is answered at once.
"""

from __future__ import annotations

import math
import re

from mitodet.errors import MitodetError

DEFAULT_TILE = 512  # input pixels per tile side (including the receptive-field overlap)
DEFAULT_BATCH = 1  # tiles per forward pass (512 x 1 was the fastest measured: benchmarks/bench_tiles.py)
DEFAULT_HOTSPOT_MM2 = 2.0  # 10 high-power fields in current grading guidelines
MIN_DENSITY_MM2 = 0.1  # below half a high-power field of tissue, a count per mm² is not a density
MIN_TILE, MAX_TILE = 128, 8192  # tile side (input px): at least a receptive field; at most ~1 GB per batch
MAX_BATCH_SIZE = 256
MAX_THREADS = 1024


# -- settings checks: one-line errors naming the setting (the CLI validates its options with these) --
def check_threshold(value, source: str = "--threshold") -> float | None:
    """A decision threshold: a finite probability in [0, 1] (None: the calibrated one)."""
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise MitodetError(source, f"threshold {value!r} is not a number") from None
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise MitodetError(source, f"threshold {value!r} is not a probability (expected 0 <= t <= 1)")
    return t


def _int_in(value, lo: int, hi: int, source: str, what: str) -> int:
    """``value`` as an int in [lo, hi]; one-line error otherwise (bools, fractions, NaN included)."""
    try:
        n = int(value)
        whole = not isinstance(value, bool) and float(value) == n
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise MitodetError(source, f"{what} {value!r} is not a whole number")
    if not lo <= n <= hi:
        raise MitodetError(source, f"{what} {n} is out of range (expected {lo} <= n <= {hi})")
    return n


def check_tile(value, source: str = "--tile") -> int:
    """Tile side in input pixels: MIN_TILE .. MAX_TILE."""
    return _int_in(value, MIN_TILE, MAX_TILE, source, "tile side")


def check_batch_size(value, source: str = "--batch-size") -> int:
    """Tiles per forward pass: 1 .. MAX_BATCH_SIZE."""
    return _int_in(value, 1, MAX_BATCH_SIZE, source, "batch size")


def check_threads(value, source: str = "--threads") -> int | None:
    """CPU threads for torch: 1 .. MAX_THREADS (None: torch's default)."""
    return None if value is None else _int_in(value, 1, MAX_THREADS, source, "thread count")


_DEVICE = re.compile(r"^(cpu|cuda|cuda:\d+|mps)$")


def check_device(value, source: str = "--device") -> str:
    """``cpu``, ``cuda``, ``cuda:N`` (present on this machine) or ``mps``."""
    name = str(value).strip().lower()
    if not _DEVICE.match(name):
        raise MitodetError(source, f"unknown device {value!r}; use cpu, cuda or cuda:N")
    if name.startswith("cuda") or name == "mps":
        import torch  # only here: the other checks run without loading torch

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MitodetError(source, f"{name}: CUDA is not available on this machine; use --device cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise MitodetError(source, f"{name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MitodetError(source, "mps: Apple GPU support is not available on this machine; use --device cpu")
    return name
