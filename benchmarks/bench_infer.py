"""Dense tiled inference vs a naive sliding-window classifier, and peak memory vs image size.

    python benchmarks/bench_infer.py [--model fast] [--crop 256] [--sizes 2048 8192 16384] [--threads 1]

1. Speed, same real image crop and model: the dense map (tiles, one pass) vs running the
   network once per output-grid position on its rf x rf window (batched). The naive run is
   timed on ``--naive-samples`` random positions and extrapolated to the whole grid; those
   positions are also checked against the dense map (same values).
2. Memory: one subprocess per size (a square image tiled from a real MoNuSeg tile, already
   in memory) measures the peak-RSS rise of the tiled dense map (``dense_rise_mb``; minus the
   output map = ``dense_overhead_mb``, which must stay flat as the size grows) and of the whole
   detection including the local-maxima search on the map (``detect_rise_mb``, a few map sizes).
Writes benchmarks/results/bench_infer.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TILE = ROOT.parent / "shared" / "data" / "tissue" / "monuseg" / "TCGA-18-5592-01Z-00-DX1.tif"
sys.path.insert(0, str(ROOT))


def real_image(size: int) -> np.ndarray:
    from mitodet.io.image import read_image

    tile, _ = read_image(TILE)
    reps = -(-size // tile.shape[0])
    return np.tile(tile, (reps, reps, 1))[:size, :size].copy()


def speed(model_name: str, crop: int, samples: int, threads: int) -> dict:
    import torch

    from mitodet.infer import dense_map
    from mitodet.model import create_model
    from mitodet.model.export import fold

    torch.set_num_threads(threads)
    model = fold(create_model(model_name).eval())
    img = real_image(crop)
    t0 = time.perf_counter()
    dense = dense_map(model, img, tile=1024)
    t_dense = time.perf_counter() - t0
    rf, s = model.receptive_field, model.stride
    h, w = dense.shape
    rng = np.random.default_rng(0)
    pos = rng.integers(0, [h, w], size=(samples, 2))
    x = (
        torch.from_numpy(np.stack([img[s * i : s * i + rf, s * j : s * j + rf] for i, j in pos]))
        .permute(0, 3, 1, 2)
        .float()
        / 255
    )
    t0 = time.perf_counter()
    with torch.no_grad():
        p = torch.cat([torch.softmax(model(x[k : k + 256]), 1)[:, 1, 0, 0] for k in range(0, len(x), 256)]).numpy()
    t_naive = (time.perf_counter() - t0) * (h * w) / samples
    err = float(np.abs(p - dense[pos[:, 0], pos[:, 1]]).max())
    return {
        "test": "speed",
        "model": model_name,
        "size": crop,
        "dense_s": round(t_dense, 3),
        "naive_s_extrapolated": round(t_naive, 2),
        "speedup": round(t_naive / t_dense, 1),
        "grid": f"{h}x{w}",
        "max_abs_diff": err,
    }


def _rss_mb(field: str) -> float:
    """VmRSS (current) or VmHWM (peak since the last reset) of this process, MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark so imports do not hide the inference peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def memory_child(size: int, model_name: str, threads: int) -> None:
    import torch

    from mitodet.infer import Detector
    from mitodet.model import create_model

    torch.set_num_threads(threads)
    det = Detector(create_model(model_name).eval(), mpp=0.25, tile=1024, batch_size=2)
    img = real_image(size)
    _reset_peak()
    base = _rss_mb("VmRSS")
    t0 = time.perf_counter()
    pm = det.probability_map(img, 0.25)  # stage 1: tiled dense map
    dense_peak, t_dense = _rss_mb("VmHWM"), time.perf_counter() - t0
    map_mb = pm.prob.nbytes / 2**20
    n = len(det.peaks(pm))  # stage 2: local maxima on the map
    peak = _rss_mb("VmHWM")
    # base already holds the input image; the rise is the inference (map + tiles + peaks)
    print(
        json.dumps(
            {
                "base_mb": base,
                "dense_peak_mb": dense_peak,
                "peak_mb": peak,
                "image_mb": img.nbytes / 2**20,
                "map_mb": map_mb,
                "seconds": t_dense,
                "total_seconds": time.perf_counter() - t0,
                "candidates": n,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fast")
    ap.add_argument("--memory-model", default="tiny", help="model of the memory runs (tiny keeps 16k feasible on CPU)")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--naive-samples", type=int, default=512)
    ap.add_argument("--sizes", type=int, nargs="*", default=[2048, 8192, 16384])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return memory_child(a.child, a.memory_model, a.threads)
    from rich.console import Console
    from rich.table import Table

    rows = [speed(a.model, a.crop, a.naive_samples, a.threads)]
    for size in a.sizes:
        r = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(size),
                "--memory-model",
                a.memory_model,
                "--threads",
                str(a.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        m = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append(
            {
                "test": "memory",
                "model": a.memory_model,
                "size": size,
                "image_mb": round(m["image_mb"]),
                "map_mb": round(m["map_mb"]),
                "dense_rise_mb": round(m["dense_peak_mb"] - m["base_mb"]),
                "dense_overhead_mb": round(m["dense_peak_mb"] - m["base_mb"] - m["map_mb"]),
                "detect_rise_mb": round(m["peak_mb"] - m["base_mb"]),
                "dense_s": round(m["seconds"], 2),
                "candidates": m["candidates"],
            }
        )
        print(rows[-1], flush=True)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    table = Table(title=f"bench_infer ({a.threads} thread(s); memory: peak-RSS rise over the loaded image)")
    for k in keys:
        table.add_column(k, no_wrap=True)
    for r in rows:
        table.add_row(*[str(r.get(k, "")) for k in keys])
    Console().print(table)
    out = ROOT / "benchmarks" / "results" / "bench_infer.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    from mitodet.io.atomic import atomic_open

    with atomic_open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
