"""Time Macenko stain vectors + unmixing (+ residual map) on a real tile mirrored up to 2048x2048.

Target (issue #5): a 2048x2048 tile in well under a second on one CPU core.
Prints a table and writes benchmarks/results/bench_stain.csv.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mitodet.io.atomic import atomic_open  # noqa: E402
from mitodet.io.image import read_image  # noqa: E402
from mitodet.mine.residual import residual_intensity  # noqa: E402
from mitodet.stain import macenko_vectors, unmix  # noqa: E402

TILE = ROOT.parent / "shared/data/tissue/monuseg/TCGA-B0-5711-01Z-00-DX1.tif"


def mirrored(tile: np.ndarray, size: int) -> np.ndarray:
    """Assemble a size x size image from a real tile by mirror tiling."""
    reps = -(-size // tile.shape[0]) + 1
    return np.pad(tile, ((0, reps * tile.shape[0]), (0, reps * tile.shape[1]), (0, 0)), mode="symmetric")[:size, :size]


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    if not TILE.exists():
        sys.exit(f"real tile {TILE} is absent")
    tile, _ = read_image(TILE)
    rows = []
    for size in (1000, 2048):
        rgb = np.ascontiguousarray(mirrored(tile, size))
        sv = macenko_vectors(rgb)
        t_vec = best_of(lambda: macenko_vectors(rgb))
        t_unmix = best_of(lambda: unmix(rgb, sv))
        t_both = best_of(lambda: unmix(rgb, macenko_vectors(rgb)))
        t_res = best_of(lambda: residual_intensity(rgb, 0.25, 2.0, sv), repeat=3)
        rows.append(
            {
                "size": f"{size}x{size}",
                "megapixels": round(size * size / 1e6, 2),
                "vectors_s": round(t_vec, 4),
                "unmix_s": round(t_unmix, 4),
                "vectors+unmix_s": round(t_both, 4),
                "residual_map_s": round(t_res, 4),
            }
        )
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Macenko stain unmixing (best of 5, one thread)")
    for k in rows[0]:
        table.add_column(k, justify="right")
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    Console().print(table)
    out = ROOT / "benchmarks/results/bench_stain.csv"
    with atomic_open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
