"""``mitodet detect --ray``: the same bytes as the plain run, and scaling from 1 to 2 Ray workers.

Inputs (built at run time from real tissue, nothing committed): the real slide
CMU-1-Small-Region.svs (4 regions with tissue) and a TIFF of N x N real MoNuSeg tiles (``--tiles``;
default 10: 9 regions of 4096 px; from 9 up an image goes by regions). Runs, each a fresh ``mitodet detect``
process on the bundled pair:

- plain: one process, the network on 2 threads;
- ``--ray --ray-cpus 1``: a local Ray runtime with 1 CPU (one task at a time, 1 thread each);
- ``--ray --ray-cpus 2``: 2 CPUs (two tasks at a time).

Checks that the three output folders hold byte-identical files, and reports wall times and the
1 -> 2 worker speed-up. On a 2-core machine shared with other work the speed-up is bounded by
the cores actually free (see the load average). Writes benchmarks/results/bench_ray.csv.

    python benchmarks/bench_ray.py [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "bench_ray.csv"
DATA = Path(os.environ.get("MITODET_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--tiles", type=int, default=10, help="the mosaic is N x N MoNuSeg tiles (default 10: 100 Mpx)")
    args = ap.parse_args()
    from benchmarks.bench_detect import monuseg_tiles, mosaic, write_image
    from mitodet.io.atomic import write_csv

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_ray."))
    work.mkdir(parents=True, exist_ok=True)
    big = work / f"monuseg-{args.tiles}x{args.tiles}.tif"
    if not big.exists():
        write_image(big, mosaic(args.tiles, monuseg_tiles()), tiled=True)
    inputs = [str(DATA / "wsi" / "CMU-1-Small-Region.svs"), str(big)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [("plain", []), ("ray, 1 CPU", ["--ray", "--ray-cpus", "1"]), ("ray, 2 CPUs", ["--ray", "--ray-cpus", "2"])]
    rows, outputs = [], {}
    for name, extra in runs:
        out = work / ("out-" + name.replace(", ", "-").replace(" ", ""))
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        cmd = [sys.executable, "-m", "mitodet.cli.main", "detect", *inputs, "--out", str(out), "--force", *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t
        if r.returncode:
            raise SystemExit(f"{name} failed:\n{r.stdout}\n{r.stderr[-3000:]}")
        outputs[name] = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
        rows.append(
            {
                "run": name,
                "inputs": f"CMU-1-Small-Region.svs + {big.name}",
                "seconds": round(seconds, 1),
                "load_avg": round(max(load0, os.getloadavg()[0]), 2),
            }
        )
        print(rows[-1], flush=True)
    ref = outputs["plain"]
    for name, files in outputs.items():
        same = files.keys() == ref.keys() and all(files[k] == ref[k] for k in ref)
        for row in rows:
            if row["run"] == name:
                row["identical_to_plain"] = same
                row["files"] = len(files)
    one = next(r["seconds"] for r in rows if r["run"] == "ray, 1 CPU")
    for row in rows:
        row["speedup_vs_ray_1cpu"] = round(one / row["seconds"], 2)
    for row in rows:
        print(
            f"{row['run']:12s} {row['seconds']:8.1f} s  x{row['speedup_vs_ray_1cpu']:.2f}  identical: "
            f"{row['identical_to_plain']} ({row['files']} files)  load {row['load_avg']}"
        )
    write_csv(OUT, list(rows[0]), rows)
    print(f"wrote {OUT}")
    if not all(r["identical_to_plain"] for r in rows):
        raise SystemExit("outputs differ")


if __name__ == "__main__":
    main()
