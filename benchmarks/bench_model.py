"""Throughput of each registered model on this CPU vs the machine's FLOPs ceiling.

Dense inference (megapixels/s of input, ``--size`` x ``--size`` images) eager, folded
(plain convs, NCHW), folded with channels-last weights and input (``fold``'s default) and
ONNX Runtime; training patches/s (forward + backward + SGD step on
``--batch`` receptive-field patches, eager). The ceiling is the measured fp32 GEMM rate;
"% peak" = FLOPs/pixel x pixels/s / GEMM rate. Prints a table, merges its rows into
benchmarks/results/bench_model.csv (one row per model/task/mode/threads/size).

    python benchmarks/bench_model.py --threads 2 [--models fast paper] [--size 1024]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from mitodet.io.atomic import atomic_open
from mitodet.model import create_model, list_models
from mitodet.model.export import export_onnx, fold
from mitodet.model.summary import flops_per_output_pixel, flops_per_patch

OUT = Path(__file__).parent / "results" / "bench_model.csv"


def gemm_job(n: int = 2048):
    a, b = torch.randn(n, n), torch.randn(n, n)
    return lambda: a @ b, 2 * n**3


def jobs_for(name: str, size: int, batch: int, threads: int, tmp: Path) -> list[tuple[dict, object]]:
    """(row, callable) for each dense mode and the training step of one model."""
    import onnxruntime as ort

    model = create_model(name).eval()
    x = torch.rand(1, 3, size, size)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    folded, folded_cl = fold(model, channels_last=False), fold(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(export_onnx(folded, tmp / f"{name}.onnx")), so, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    fpx = flops_per_output_pixel(model) / model.stride**2
    dense = dict(model=name, task="dense", threads=threads, size=size, work=size * size, flops=fpx * size * size)
    jobs = []
    for mode, fn in (
        ("eager", lambda: model(x)),
        ("folded", lambda: folded(x)),
        ("folded, NHWC", lambda: folded_cl(x_cl)),
        ("onnxruntime", lambda: sess.run(None, {"image": xn})),
    ):
        jobs.append(({**dense, "mode": mode}, fn))
    # training: one SGD step (forward, backward, update) on a batch of rf x rf patches
    train = create_model(name).train()
    opt = torch.optim.SGD(train.parameters(), lr=1e-3, momentum=0.9)
    rf = train.receptive_field
    xb, yb = torch.rand(batch, 3, rf, rf), torch.randint(0, 2, (batch,))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(train(xb)[:, :, 0, 0], yb).backward()
        opt.step()

    jobs.append(
        (
            dict(
                model=name,
                task="train",
                mode="eager",
                threads=threads,
                size=rf,
                work=batch,
                flops=3 * flops_per_patch(model) * batch,
            ),
            step,
        )
    )  # backward ~ 2x forward
    return jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=[m for m in list_models() if "tiny" not in m])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    size = args.size - (args.size % 2)
    console = Console(width=130)
    load_before = os.getloadavg()[0]  # the CPU is shared: record how busy it was
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        gemm, gemm_flops = gemm_job()
        jobs = [job for name in args.models for job in jobs_for(name, size, args.batch, args.threads, Path(tmp))]
        best = [float("inf")] * len(jobs)
        best_gemm = float("inf")
        # Interleaved rounds, best time of each: every job (and the ceiling) sees the same
        # background load of this shared machine, so the ratios are fair.
        for _ in track(range(args.repeats + 1), description="rounds", console=console):
            for k, (row, fn) in enumerate(jobs):
                with torch.enable_grad() if row["task"] == "train" else torch.no_grad():
                    t = time.perf_counter()
                    fn()
                    best[k] = min(best[k], time.perf_counter() - t) if _ else best[k]  # round 0: warm-up
                t = time.perf_counter()
                gemm()
                best_gemm = min(best_gemm, time.perf_counter() - t)
    peak = gemm_flops / best_gemm
    load = round(max(load_before, os.getloadavg()[0]), 2)
    rows = []
    for (row, _fn), t in zip(jobs, best, strict=False):
        rate = row.pop("work") / t
        flops = row.pop("flops") / t
        dense = row["task"] == "dense"
        rows.append(
            {
                **row,
                "mpx_per_s": rate / 1e6 if dense else "",
                "patches_per_s": "" if dense else rate,
                "gflops_per_s": flops / 1e9,
                "pct_peak": 100 * flops / peak,
                "s_per_midog_image": 39e6 / rate if dense else "",
                "load_avg": load,
            }
        )

    table = Table(
        title=f"model throughput, {args.size}x{args.size} dense input, batch {args.batch} "
        f"training, {args.threads} threads, ceiling {peak / 1e9:.0f} GFLOP/s, "
        f"load average {load}"
    )
    for col in ("model", "task", "mode", "Mpx/s", "patches/s", "GFLOP/s", "% peak", "s / 39 Mpx image"):
        table.add_column(col, justify="left" if col in ("model", "task", "mode") else "right")
    fmt = lambda v, f: "" if v == "" else format(v, f)  # noqa: E731
    for r in rows:
        table.add_row(
            r["model"],
            r["task"],
            r["mode"],
            fmt(r["mpx_per_s"], ".2f"),
            fmt(r["patches_per_s"], ".1f"),
            fmt(r["gflops_per_s"], ".0f"),
            fmt(r["pct_peak"], ".0f"),
            fmt(r["s_per_midog_image"], ".0f"),
        )
    console.print(table)
    # Merge with earlier runs (one model per run keeps each run short): replace same-key rows.
    new = [
        {**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}, "gemm_gflops": round(peak / 1e9, 1)}
        for r in rows
    ]
    key = lambda r: (r["model"], r["task"], r["mode"], str(r["threads"]), str(r["size"]))  # noqa: E731
    keys = {key(r) for r in new}
    old = []
    if OUT.exists():
        with open(OUT, newline="") as fh:
            old = [r for r in csv.DictReader(fh) if key(r) not in keys and set(r) == set(new[0])]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(new[0]))
    w.writeheader()
    w.writerows(old + new)
    with atomic_open(OUT, "w", newline="") as fh:
        fh.write(buf.getvalue())
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
