"""Training throughput (patches/s) per registered model configuration, on real crops.

For each configuration: the batch sampler alone (gather + augmentation on the device)
and full training steps (sampler + forward + backward + SGD step), at batch 128.
Prints a table and writes benchmarks/results/train-<device>-<amp>.csv (e.g. train-cpu-none.csv,
train-cuda-bf16.csv), so CPU and GPU runs never clobber each other. A rerun replaces only
the rows of the configurations it measured (same model, batch, threads, compile) and keeps
the rest. (train.csv and train-cuda.csv are earlier results in the one-file-per-device layout.)

    python benchmarks/bench_train.py                      # this CPU
    python benchmarks/bench_train.py --device cuda --amp bf16 --models paper,fast
    python benchmarks/bench_train.py --device cuda --amp bf16 --models paper --channels-last --profile
"""

from __future__ import annotations

import argparse
import csv
import datetime
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mitodet.train.config import config_from_dict  # noqa: E402
from mitodet.train.device import autocast as _autocast  # noqa: E402
from mitodet.train.engine import logits_center  # noqa: E402
from mitodet.train.run import prepare_data  # noqa: E402
from mitodet.train.sampler import BatchSampler  # noqa: E402

CROPS = ROOT.parent / "shared" / "data" / "midog21_crops"
TISSUE = ROOT.parent / "shared" / "data" / "tissue" / "monuseg"


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def measure(fn, dev, seconds: float, min_steps: int) -> tuple[int, float]:
    fn()  # warm-up (allocations, cudnn autotune, compile)
    fn()
    sync(dev)
    t0, n = time.perf_counter(), 0
    while n < min_steps or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    sync(dev)
    return n, time.perf_counter() - t0


KEY = ("model", "batch", "threads", "compile", "channels_last")  # a rerun of these replaces the old row


def merge_rows(path: Path, rows: list[dict]) -> list[dict]:
    """Earlier rows of ``path`` not re-measured now, then the new rows."""
    old = list(csv.DictReader(open(path, newline=""))) if path.is_file() else []
    new_keys = {tuple(str(r[k]) for k in KEY) for r in rows}
    kept = [
        r
        for r in old
        if tuple(str(r.get(k, "False" if k in ("compile", "channels_last") else "")) for k in KEY) not in new_keys
    ]
    return kept + rows


def profile_steps(step, dev, console, name: str, steps: int = 3) -> None:
    """Print the ops taking the most (device, else CPU) time over a few training steps."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        sync(dev)
    key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    console.print(f"[bold]{name}: top ops over {steps} steps[/bold]")
    console.print(prof.key_averages().table(sort_by=key, row_limit=20), soft_wrap=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny,fast,plain-fast,paper")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", default="none", choices=["none", "bf16"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=8.0, help="time per measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--channels-last", action="store_true", help="model and inputs in NHWC (tensor-core convs)")
    ap.add_argument("--profile", action="store_true", help="torch.profiler table of the top ops of 3 training steps")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not CROPS.is_dir():
        print(f"skipped: real data {CROPS} is absent")
        return
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    from mitodet.model import create_model

    raw = {
        "device": args.device,
        "model": {"name": "fast"},
        "data": {"crops": str(CROPS), "tissue": [str(TISSUE)] if TISSUE.is_dir() else []},
        "sampling": {"batch_size": args.batch},
        "train": {"amp": args.amp},
    }
    cfg = config_from_dict(raw)
    t0 = time.perf_counter()
    _, pool, _ = prepare_data(cfg, None, False)
    pool = pool.to(dev)
    load_s = time.perf_counter() - t0
    console = Console()
    console.print(
        f"pool: {pool.describe()} loaded in {load_s:.1f}s; device {dev}, amp {args.amp}, "
        f"threads {torch.get_num_threads()}, batch {args.batch}"
    )
    rows = []
    for name in args.models.split(","):
        net = create_model(name).to(dev)
        fmt = torch.channels_last if args.channels_last else torch.contiguous_format
        for prm in net.parameters():  # 4-D weights only (P4 filters are 5-D, expanded to 4-D per step)
            if prm.dim() == 4:
                prm.data = prm.data.contiguous(memory_format=fmt)
        rf = net.receptive_field
        sampler = BatchSampler(pool, cfg, rf)
        n, s = measure(sampler.sample, dev, args.seconds / 2, 3)
        sample_rate = n * args.batch / s
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
        fwd = torch.compile(net) if args.compile else net

        def step():
            x, y = sampler.sample()
            x = x.contiguous(memory_format=fmt)
            with _autocast(dev, args.amp == "bf16"):
                out = logits_center(fwd(x))
            loss = F.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        n, s = measure(step, dev, args.seconds, 2)
        if args.profile:
            profile_steps(step, dev, console, name)
        rows.append(
            {
                "model": name,
                "rf": rf,
                "device": str(dev),
                "amp": args.amp,
                "batch": args.batch,
                "threads": torch.get_num_threads(),
                "sampler_patches_per_s": round(sample_rate, 1),
                "train_patches_per_s": round(n * args.batch / s, 1),
                "steps": n,
                "seconds": round(s, 2),
                "compile": args.compile,
                "channels_last": args.channels_last,
                "date": datetime.date.today().isoformat(),
                "cpu": platform.processor() or platform.machine(),
                "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "",
            }
        )
        console.print(f"{name}: {rows[-1]['train_patches_per_s']} patches/s")
    table = Table(title="training throughput (patches/s)")
    for k in ("model", "device", "amp", "batch", "sampler_patches_per_s", "train_patches_per_s", "steps"):
        table.add_column(k)
    for r in rows:
        table.add_row(
            *(
                str(r[k])
                for k in ("model", "device", "amp", "batch", "sampler_patches_per_s", "train_patches_per_s", "steps")
            )
        )
    console.print(table)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"train-{dev.type}-{args.amp}.csv"
    merged = merge_rows(out, rows)
    from mitodet.io.atomic import atomic_open

    fields = list(rows[0]) + [k for r in merged for k in r if k not in rows[0]]
    fields = list(dict.fromkeys(fields))
    with atomic_open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(merged)
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
