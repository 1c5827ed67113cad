"""Capacity at equal compute (#17 item 4): `fast` (44k parameters) against `medium` (12 P4
fields instead of 8), both trained by the same fields recipe from the same bundled CA-RGB
weights (`medium` widened from them, so both start from the same logits).

    python benchmarks/bench_capacity.py [--fast training-state/fields-ca-rgb]
                                        [--medium training-state/capacity-medium]

Read from the two runs' training histories (metrics.csv: the same validation, the held-back
MITOS-ATYPIA-14 frames by the official F1 and the crops' F1 at 11.1 mitoses/mm², every second
epoch), at equal minutes (the best checkpoint either run had after the shorter run's minutes)
and at equal epochs (the same number of training samples: more compute for the wider one).
Then the cost of detection: one dense forward pass over a real 1000x1000 tissue tile on one CPU
thread, both networks in the same run, and the size of their weights. Prints a table; writes
benchmarks/results/bench_capacity.csv.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mitodet.io.atomic import atomic_open  # noqa: E402
from mitodet.model import create_model  # noqa: E402

DATA = Path(os.environ.get("MITODET_DATA", ROOT.parent / "shared" / "data"))
TILE = DATA / "tissue" / "monuseg" / "TCGA-49-4488-01Z-00-DX1.tif"  # a validation tile
SCORES = ("val_f1_fields", "val_f1_density", "val_f1_mean")


def history(run: Path) -> list[dict]:
    """Validated epochs of a run: epoch, cumulative minutes, the scores."""
    rows, minutes = [], 0.0
    with open(run / "metrics.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            minutes += float(r["seconds"]) / 60
            if r.get("val_f1_mean"):
                rows.append({"epoch": int(r["epoch"]), "minutes": minutes, **{k: float(r[k]) for k in SCORES}})
    return rows


def best_by(rows: list[dict], key: str, limit: float) -> dict | None:
    """The checkpoint selection rule of the runs (best val_f1_mean) among rows with key <= limit."""
    seen = [r for r in rows if r[key] <= limit + 1e-9]
    return max(seen, key=lambda r: r["val_f1_mean"]) if seen else None


def forward_seconds(name: str, x: torch.Tensor, repeats: int = 3) -> float:
    torch.manual_seed(0)
    net = create_model(name).eval()
    with torch.no_grad():
        net(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            net(x)
    return (time.perf_counter() - t0) / repeats


def weights_mb(name: str) -> float:
    buf = io.BytesIO()
    torch.save(create_model(name).state_dict(), buf)
    return buf.tell() / 1e6


def tile() -> torch.Tensor:
    if TILE.is_file():
        import tifffile

        arr = tifffile.imread(TILE)[..., :3]
    else:  # the cost does not depend on the pixels
        print(f"note: {TILE} is absent; timing on a uniform image")
        arr = np.full((1000, 1000, 3), 200, np.uint8)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float() / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", type=Path, default=ROOT / "training-state" / "fields-ca-rgb")
    ap.add_argument("--medium", type=Path, default=ROOT / "training-state" / "capacity-medium")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_capacity.csv")
    a = ap.parse_args()
    torch.set_num_threads(1)
    runs = {"fast": history(a.fast), "medium": history(a.medium)}
    if not all(runs.values()):
        sys.exit(f"error: a run has no validated epoch yet ({', '.join(k for k, v in runs.items() if not v)})")
    equal = {
        "minutes": min(max(r["minutes"] for r in rows) for rows in runs.values()),
        "epoch": min(max(r["epoch"] for r in rows) for rows in runs.values()),
    }
    x = tile()
    cost = {name: forward_seconds(name, x) for name in runs}
    table = []
    for name, rows in runs.items():
        for key, limit in equal.items():
            b = best_by(rows, key, limit)
            assert b is not None
            table.append(
                {
                    "model": name,
                    "parameters": sum(p.numel() for p in create_model(name).parameters()),
                    "weights_mb": round(weights_mb(name), 3),
                    "forward_s_1000px": round(cost[name], 3),
                    "cost_vs_fast": round(cost[name] / cost["fast"], 2),
                    "compared_at": f"equal {key}s ({limit:.0f})" if key == "epoch" else f"equal minutes ({limit:.0f})",
                    "best_epoch": b["epoch"],
                    "minutes_to_best": round(b["minutes"], 1),
                    **{k: round(b[k], 3) for k in SCORES},
                }
            )
    cols = list(table[0])
    print(" | ".join(cols))
    for r in table:
        print(" | ".join(str(r[c]) for c in cols))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(a.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(table)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
