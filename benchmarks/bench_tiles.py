"""Tile size and batch size for dense detection, measured: the defaults of ``mitodet detect``.

One model (the bundled CA-RGB weights, ``fast``) on a real-tissue image (MoNuSeg tiles side by
side), each backend x tile x batch: wall time of ``dense_map`` and its peak memory. On a shared,
noisy machine the configurations run in interleaved rounds with a GEMM between them, the best
round counts, and speed is given as a share of the one-model limit measured in the same run
(GEMM GFLOP/s / model FLOPs per pixel). Peak memory is measured in a fresh subprocess per
configuration (ru_maxrss minus the process before the map). Prints a table, writes
benchmarks/results/bench_tiles.csv.

    python benchmarks/bench_tiles.py [--size 2048] [--tiles 384 512 768 1024 1536] [--batches 1 2]
                                     [--torch-tiles 512 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "bench_tiles.csv"
DATA = Path(os.environ.get("MITODET_DATA", ROOT.parent / "shared" / "data"))
WEIGHTS = ROOT / "mitodet" / "weights" / "default-ca-rgb.pt"


def real_image(size: int):
    """A ``size`` x ``size`` mosaic of real MoNuSeg tiles (40x H&E)."""
    import numpy as np

    from mitodet.io.image import read_image

    files = sorted((DATA / "tissue" / "monuseg").glob("*.tif"))
    if not files:
        raise SystemExit(f"no MoNuSeg tiles under {DATA / 'tissue' / 'monuseg'}")
    n = -(-size // 1000)
    tiles = [read_image(files[k % len(files)])[0] for k in range(n * n)]
    rows = [np.concatenate(tiles[r * n : (r + 1) * n], axis=1) for r in range(n)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:size, :size])


def model_for(backend: str, threads: int):
    import torch

    from mitodet.infer.onnx import OnnxModel
    from mitodet.model import load_checkpoint
    from mitodet.model.export import fold

    torch.set_num_threads(threads)
    net, _ = load_checkpoint(WEIGHTS)
    return OnnxModel(fold(net), threads) if backend == "onnx" else fold(net)


def _hwm_kb() -> int:
    """Peak resident memory of this process image (VmHWM; ru_maxrss would include the parent's
    peak before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_probe(backend: str, tile: int, batch: int, size: int, threads: int) -> None:
    """Child process: peak RSS, and its rise over the loaded models and image, of one dense map."""
    from mitodet.infer.dense import dense_map

    img = real_image(size)
    model = model_for(backend, threads)
    before = _hwm_kb()
    dense_map(model, img, tile=tile, batch_size=batch)
    peak = _hwm_kb()
    print(json.dumps({"peak_rss_mb": peak / 1024, "rise_mb": (peak - before) / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--tiles", type=int, nargs="*", default=[384, 512, 640, 768, 1024, 1536], help="ONNX Runtime")
    ap.add_argument("--batches", type=int, nargs="*", default=[1, 2], help="ONNX Runtime")
    ap.add_argument("--torch-tiles", type=int, nargs="*", default=[512, 1024], help="folded torch, batch 1 and 4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--probe", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        memory_probe(args.probe[0], int(args.probe[1]), int(args.probe[2]), args.size, args.threads)
        return
    import torch
    from rich.console import Console
    from rich.table import Table

    from mitodet.infer.dense import dense_map
    from mitodet.io.atomic import write_csv
    from mitodet.model.summary import flops_per_output_pixel

    console = Console(width=140)
    img = real_image(args.size)
    models = {b: model_for(b, args.threads) for b in ("onnx", "torch")}
    net = models["torch"]
    flops_px = flops_per_output_pixel(net) / net.stride**2
    configs = [("onnx", t, n) for t in args.tiles for n in args.batches]
    configs += [("torch", t, n) for t in args.torch_tiles for n in (1, 4)]
    a, bm = torch.randn(2048, 2048), torch.randn(2048, 2048)
    best = {c: float("inf") for c in configs}
    gemm = float("inf")
    load = [os.getloadavg()[0]]
    for r in range(args.rounds + 1):  # round 0 warms up
        for c in configs:
            t = time.perf_counter()
            dense_map(models[c[0]], img, tile=c[1], batch_size=c[2])
            dt = time.perf_counter() - t
            if r:
                best[c] = min(best[c], dt)
            t = time.perf_counter()
            a @ bm
            gemm = min(gemm, time.perf_counter() - t)
        load.append(os.getloadavg()[0])
        console.print(f"round {r} done (load average {load[-1]:.2f})")
    gflops = 2 * 2048**3 / gemm / 1e9
    limit = gflops * 1e9 / flops_px / 1e6  # Mpx/s of one model at the GEMM rate
    rows = []
    for c in configs:
        probe = subprocess.run(
            [sys.executable, __file__, "--probe", c[0], str(c[1]), str(c[2]), "--size", str(args.size)]
            + ["--threads", str(args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        mem = json.loads(probe.stdout.strip().splitlines()[-1])
        mpx = args.size**2 / 1e6 / best[c]
        rows.append(
            {
                "backend": c[0],
                "tile": c[1],
                "batch": c[2],
                "seconds": round(best[c], 3),
                "mpx_per_s": round(mpx, 3),
                "pct_of_limit": round(100 * mpx / limit, 1),
                "peak_rss_mb": round(mem["peak_rss_mb"]),
                "map_rise_mb": round(mem["rise_mb"]),
                "gemm_gflops": round(gflops, 1),
                "limit_mpx_per_s": round(limit, 3),
                "threads": args.threads,
                "size": args.size,
                "load_avg_max": round(max(load), 2),
            }
        )
    table = Table(
        title=f"dense map of a {args.size}² real-tissue image, one model, {args.threads} threads; limit "
        f"{limit:.2f} Mpx/s (GEMM {gflops:.0f} GFLOP/s); load average up to {max(load):.1f}"
    )
    for col in ("backend", "tile", "batch", "s", "Mpx/s", "% of limit", "peak RSS MB", "rise MB"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in rows:
        table.add_row(
            r["backend"],
            str(r["tile"]),
            str(r["batch"]),
            f"{r['seconds']:.2f}",
            f"{r['mpx_per_s']:.2f}",
            f"{r['pct_of_limit']:.0f}",
            str(r["peak_rss_mb"]),
            str(r["map_rise_mb"]),
        )
    console.print(table)
    write_csv(OUT, list(rows[0]), rows)
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
