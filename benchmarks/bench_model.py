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
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from mitodet.io.atomic import atomic_open
from mitodet.model import create_model, list_models
from mitodet.model.export import export_onnx, fold
from mitodet.model.summary import flops_per_output_pixel, flops_per_patch

OUT = Path(__file__).parent / "results" / "bench_model.csv"


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)  # the least disturbed run (the CPU is shared)


def gemm_rate(threads: int, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / best_time(lambda: a @ b, 5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=[m for m in list_models() if "tiny" not in m])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime as ort

    peak = gemm_rate(args.threads)
    console = Console(width=130)
    console.print(f"fp32 GEMM ceiling on {args.threads} threads: {peak / 1e9:.0f} GFLOP/s")
    rows = []
    for name in args.models:
        model = create_model(name).eval()
        folded = fold(model, channels_last=False)
        size = args.size - (args.size % 2)
        x = torch.rand(1, 3, size, size)
        px = size * size
        fpx = flops_per_output_pixel(model) / model.stride**2
        with torch.no_grad():
            t_eager = best_time(lambda: model(x), args.repeats)
            t_fold = best_time(lambda: folded(x), args.repeats)
            folded_cl = fold(model)  # channels-last weights (the default)
            x_cl = x.contiguous(memory_format=torch.channels_last)
            t_cl = best_time(lambda: folded_cl(x_cl), args.repeats)
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(folded, Path(tmp) / "m.onnx")
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            t_onnx = best_time(lambda: sess.run(None, {"image": xn}), args.repeats)
        # training: one SGD step on a batch of rf x rf patches
        train = create_model(name).train()
        opt = torch.optim.SGD(train.parameters(), lr=1e-3, momentum=0.9)
        rf = train.receptive_field
        xb, yb = torch.rand(args.batch, 3, rf, rf), torch.randint(0, 2, (args.batch,))

        def step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(train(xb)[:, :, 0, 0], yb)
            loss.backward()
            opt.step()

        t_train = best_time(step, max(1, args.repeats - 1))
        patch_flops = 3 * flops_per_patch(model)  # forward + ~2x for backward
        for mode, t in (("eager", t_eager), ("folded", t_fold), ("folded, NHWC", t_cl),
                        ("onnxruntime", t_onnx)):
            rows.append(dict(model=name, task="dense", mode=mode, threads=args.threads, size=size,
                             mpx_per_s=px / t / 1e6, patches_per_s="",
                             gflops_per_s=fpx * px / t / 1e9,
                             pct_peak=100 * fpx * px / t / peak,
                             s_per_midog_image=39e6 / (px / t)))
        rows.append(dict(model=name, task="train", mode="eager", threads=args.threads, size=rf, mpx_per_s="",
                         patches_per_s=args.batch / t_train,
                         gflops_per_s=patch_flops * args.batch / t_train / 1e9,
                         pct_peak=100 * patch_flops * args.batch / t_train / peak, s_per_midog_image=""))

    table = Table(title=f"model throughput, {args.size}x{args.size} dense input, batch {args.batch} "
                        f"training, {args.threads} threads, ceiling {peak / 1e9:.0f} GFLOP/s")
    for col in ("model", "task", "mode", "Mpx/s", "patches/s", "GFLOP/s", "% peak", "s / 39 Mpx image"):
        table.add_column(col, justify="left" if col in ("model", "task", "mode") else "right")
    fmt = lambda v, f: "" if v == "" else format(v, f)  # noqa: E731
    for r in rows:
        table.add_row(r["model"], r["task"], r["mode"], fmt(r["mpx_per_s"], ".2f"), fmt(r["patches_per_s"], ".1f"),
                      fmt(r["gflops_per_s"], ".0f"), fmt(r["pct_peak"], ".0f"), fmt(r["s_per_midog_image"], ".0f"))
    console.print(table)
    # Merge with earlier runs (one model per run keeps each run short): replace same-key rows.
    new = [{**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()},
            "gemm_gflops": round(peak / 1e9, 1)} for r in rows]
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
