"""End-to-end ``mitodet detect`` (the bundled pair, default settings) against the one-model limit.

Inputs, built at run time from real tissue (nothing is committed):

- ``9mpx``: 3 x 3 real MoNuSeg tiles (40x H&E), a 3000² TIFF at 0.25 µm/px;
- ``100mpx``: 10 x 10 of them, a 10000² tiled TIFF (processed by regions);
- the two real slides of ``shared/data/wsi`` (CMU-1-Small-Region at its 0.499 µm/px, read at the
  model's 0.25; the TCGA section has no spacing stored: 1.0 µm/px, the SOURCE.md estimate);
- ``gpx``: a pyramidal, JPEG-tiled TIFF of >= 1 Gpx: a real section's outline (the TCGA slide's
  tissue mask) filled with real MoNuSeg tissue on white glass.

Each input runs as its own ``mitodet detect`` process under ``/usr/bin/time`` (wall time, peak
RSS, user and system time). The machine is shared and noisy, so speed is a share of the one-model
limit measured around each run: the best of several 2048² fp32 GEMMs (GFLOP/s) divided by the
model's FLOPs per input pixel gives the Mpx/s one model could reach; "% of limit" is the pair's
end-to-end Mpx/s (image area at the model spacing / wall time) over that. Prints a table, writes
benchmarks/results/bench_detect.csv.

    python benchmarks/bench_detect.py [--only 9mpx 100mpx cmu tcga gpx] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "bench_detect.csv"
DATA = Path(os.environ.get("MITODET_DATA", ROOT.parent / "shared" / "data"))
WEIGHTS = ROOT / "mitodet" / "weights" / "default-ca-rgb.pt"


def monuseg_tiles() -> list[np.ndarray]:
    from mitodet.io.image import read_image

    files = sorted((DATA / "tissue" / "monuseg").glob("*.tif"))
    if not files:
        raise SystemExit(f"no MoNuSeg tiles under {DATA / 'tissue' / 'monuseg'}")
    return [read_image(f)[0] for f in files]


def mosaic(n: int, tiles: list[np.ndarray]) -> np.ndarray:
    rows = [np.concatenate([tiles[(r * n + c) % len(tiles)] for c in range(n)], axis=1) for r in range(n)]
    return np.concatenate(rows, axis=0)


def write_image(path: Path, img: np.ndarray, tiled: bool) -> None:
    import tifffile

    extra = {"tile": (512, 512)} if tiled else {}
    tifffile.imwrite(path, img, resolution=(40000, 40000), resolutionunit="CENTIMETER", photometric="rgb", **extra)


def write_gpx_slide(path: Path, tiles: list[np.ndarray], side: int = 32768) -> float:
    """A pyramidal TIFF (levels /1, /4, /16, JPEG tiles) of a real section outline filled with real
    tissue; returns the tissue share of the layout."""
    import tifffile
    from PIL import Image

    from mitodet.infer.plan import slide_thumbnail
    from mitodet.infer.tissue import tissue_mask
    from mitodet.io.slide import open_slide

    with open_slide(DATA / "wsi" / "tcga-cr-7395-01a-01-ts1.svs", mpp=1.0) as s:
        pic, f = slide_thumbnail(s, max_side=1024)
        outline = tissue_mask(pic, 1.0 / f).mask
    # the section spans 70% of the canvas width, centred
    h, w = outline.shape
    scale = 0.7 * side / w
    layout = np.zeros((side // 64, side // 64), bool)  # 16 µm cells
    small = np.asarray(Image.fromarray(outline).resize((round(w * scale / 64), round(h * scale / 64))))
    y0, x0 = (layout.shape[0] - small.shape[0]) // 2, (layout.shape[1] - small.shape[1]) // 2
    layout[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    glass = np.array([242, 241, 243], np.uint8)
    T = 512

    def block(y: int, x: int, size: int, step: int) -> np.ndarray:
        """Canvas pixels [y, y + size*step) x [x, ...) sampled every ``step`` pixels."""
        ys, xs = y + step * np.arange(size), x + step * np.arange(size)
        out = np.empty((size, size, 3), np.uint8)
        out[:] = glass
        inside = layout[np.ix_(np.minimum(ys // 64, layout.shape[0] - 1), np.minimum(xs // 64, layout.shape[1] - 1))]
        if inside.any():
            ti = (ys // 1000)[:, None] * 97 + (xs // 1000)[None, :]
            for k in np.unique(ti[inside]):
                sel = inside & (ti == k)
                rr, cc = np.nonzero(sel)
                out[rr, cc] = tiles[int(k) % len(tiles)][ys[rr] % 1000, xs[cc] % 1000]
        return out

    def level(step: int):
        n = side // step
        for y in range(0, n, T):
            for x in range(0, n, T):
                yield block(y * step, x * step, T, step)

    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for k, step in enumerate((1, 4, 16)):
            res = 40000 / step
            tw.write(
                level(step),
                shape=(side // step, side // step, 3),
                dtype=np.uint8,
                tile=(T, T),
                compression="jpeg",
                photometric="rgb",
                subfiletype=1 if k else 0,
                resolution=(res, res),
                resolutionunit="CENTIMETER",
            )
    return float(layout.mean())


def gemm_gflops(repeats: int = 3) -> float:
    code = (
        "import time, torch; torch.set_num_threads(2); a=torch.randn(2048,2048); b=torch.randn(2048,2048); a@b; "
        f"print(min((lambda t: (a@b, time.perf_counter()-t)[1])(time.perf_counter()) for _ in range({repeats})))"
    )
    t = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    return 2 * 2048**3 / t / 1e9


def flops_per_pixel() -> float:
    from mitodet.model import load_checkpoint
    from mitodet.model.summary import flops_per_output_pixel

    net, _ = load_checkpoint(WEIGHTS)
    return flops_per_output_pixel(net) / net.stride**2


def run_detect(inp: Path, out: Path, extra: list[str]) -> dict:
    cmd = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "mitodet.cli.main",
        "detect",
        str(inp),
        "--out",
        str(out),
        "--force",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd + extra, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"detect failed on {inp}:\n{r.stdout}\n{r.stderr[-3000:]}")

    def grab(key: str) -> str:
        return re.search(rf"{re.escape(key)}: (.+)", r.stderr).group(1).strip()

    wall = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    seconds = sum(float(v) * 60**k for k, v in enumerate(reversed(wall)))
    summary = json.loads((out / f"{inp.stem}.mitotic-figures.json").read_text())["summary"]
    return {
        "seconds": seconds,
        "user_s": float(grab("User time (seconds)")),
        "system_s": float(grab("System time (seconds)")),
        "peak_rss_mb": int(grab("Maximum resident set size (kbytes)")) / 1024,
        "summary": summary,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=["9mpx", "100mpx", "cmu", "tcga", "gpx"])
    ap.add_argument("--work", type=Path, default=None, help="folder for the built inputs (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the built inputs and outputs")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more detect options, e.g. --backend torch")
    args = ap.parse_args()
    from rich.console import Console
    from rich.table import Table

    from mitodet.io.atomic import write_csv

    console = Console(width=150)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_detect."))
    work.mkdir(parents=True, exist_ok=True)
    tiles = monuseg_tiles()
    fpx = flops_per_pixel()
    cases: list[tuple[str, Path, list[str], float]] = []  # name, input, options, model-spacing Mpx
    for name in args.only:
        if name == "9mpx":
            p = work / "monuseg-3x3.tif"
            if not p.exists():
                write_image(p, mosaic(3, tiles), tiled=False)
            cases.append((name, p, [], 9.0))
        elif name == "100mpx":
            p = work / "monuseg-10x10.tif"
            if not p.exists():
                write_image(p, mosaic(10, tiles), tiled=True)
            cases.append((name, p, [], 100.0))
        elif name == "cmu":
            p = DATA / "wsi" / "CMU-1-Small-Region.svs"
            cases.append((name, p, [], 2220 * 2967 * (0.499 / 0.25) ** 2 / 1e6))
        elif name == "tcga":
            p = DATA / "wsi" / "tcga-cr-7395-01a-01-ts1.svs"
            cases.append((name, p, ["--mpp", "1.0"], 4443 * 3567 * 16 / 1e6))
        elif name == "gpx":
            p = work / "section-1gpx.tif"
            if not p.exists():
                t = time.perf_counter()
                share = write_gpx_slide(p, tiles)
                console.print(
                    f"built {p} ({p.stat().st_size / 1e9:.2f} GB, layout {100 * share:.0f}% tissue) in "
                    f"{time.perf_counter() - t:.0f} s"
                )
            cases.append((name, p, ["--mpp", "0.25"], 32768**2 / 1e6))
    rows = []
    for name, inp, opts, mpx in cases:
        load0 = os.getloadavg()[0]
        g0 = gemm_gflops()
        res = run_detect(inp, work / f"out-{name}", opts + list(args.extra))
        g1 = gemm_gflops()
        gflops = max(g0, g1)
        limit = gflops * 1e9 / fpx / 1e6
        rate = mpx / res["seconds"]
        s = res["summary"]
        rows.append(
            {
                "input": name,
                "file": inp.name,
                "mpx_at_0.25": round(mpx, 1),
                "seconds": round(res["seconds"], 1),
                "mpx_per_s": round(rate, 3),
                "gemm_gflops": round(gflops, 1),
                "limit_mpx_per_s": round(limit, 3),
                "pct_of_limit": round(100 * rate / limit, 1),
                "peak_rss_mb": round(res["peak_rss_mb"]),
                "user_s": res["user_s"],
                "system_s": res["system_s"],
                "tissue_fraction": s["tissue_fraction"],
                "skipped_fraction": round(1 - s["tissue_fraction"], 4),
                "network_mpx": s["network_mpx"],
                "mitotic_figures": s["mitotic_figures"],
                "load_avg": round(max(load0, os.getloadavg()[0]), 2),
                "options": " ".join(opts + list(args.extra)),
            }
        )
        console.print(rows[-1])
    table = Table(title="mitodet detect end to end, bundled pair, 2 CPU cores (shared: see load)")
    cols = ["input", "Mpx", "s", "Mpx/s", "limit Mpx/s", "% of limit", "peak RSS MB", "sys s", "tissue", "net Mpx"]
    cols.append("load")
    for c in cols:
        table.add_column(c, justify="left" if c == "input" else "right")
    for r in rows:
        table.add_row(
            r["input"],
            f"{r['mpx_at_0.25']:.0f}",
            f"{r['seconds']:.1f}",
            f"{r['mpx_per_s']:.2f}",
            f"{r['limit_mpx_per_s']:.2f}",
            f"{r['pct_of_limit']:.0f}",
            str(r["peak_rss_mb"]),
            f"{r['system_s']:.1f}",
            f"{100 * r['tissue_fraction']:.0f}%",
            f"{r['network_mpx']:.0f}",
            f"{r['load_avg']:.1f}",
        )
    console.print(table)
    old = []
    if OUT.exists():
        with open(OUT, newline="") as fh:
            done = {r["input"] for r in rows}
            old = [r for r in csv.DictReader(fh) if r.get("input") not in done and set(r) == set(rows[0])]
    write_csv(OUT, list(rows[0]), old + rows)
    console.print(f"wrote {OUT}")
    if not args.keep and args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
