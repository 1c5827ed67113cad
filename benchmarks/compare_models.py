"""Compare training runs on the report's test sets (same rules as report_models.py).

    python benchmarks/compare_models.py --run NAME=RUN_DIR [--run ...] [--pair A,B]
        [--loso "Aperio CS2"] [--out docs/results/compare.csv]

Each run is calibrated on its own validation split (pooled F1, 7.5 µm). For every run (and each
--pair, as the agreement ensemble) it prints ICPR 2012 F1 / AP, detections per mm² of tissue on
the held-out MoNuSeg tiles and CCMCT, and with --loso the sensitivity on the crops of that
scanner. Candidates are cached like the report's (runs/report_cache/).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import report_models as R
from rich.progress import Progress

from mitodet.evaluate import best_threshold
from mitodet.io.atomic import atomic_open


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR (best.pt + split of the run)")
    ap.add_argument("--pair", action="append", default=[], help="A,B: also score the agreement ensemble of two runs")
    ap.add_argument("--loso", default=None, help="also the sensitivity on every crop of this scanner")
    ap.add_argument("--data", type=Path, default=R.ROOT.parent / "shared" / "data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=R.ROOT / "docs" / "results" / "compare.csv")
    args = ap.parse_args()
    cache = R.ROOT / "runs" / "report_cache"
    models = {}
    for spec in args.run:
        name, run = spec.split("=", 1)
        models[name] = R.Model(name, Path(run) / "best.pt", Path(run))
    sets = {"icpr": R.icpr(args.data), **R.tissue(args.data, R.ROOT / "configs" / "default-ca-rgb.yaml")}
    if args.loso:
        sets["loso"] = R.crops_by_scanner(args.data)[args.loso]
    area = {k: R.tissue_area(v, cache) for k, v in sets.items() if k not in ("icpr", "loso")}
    rows = []
    with Progress(console=R.console) as bar:
        cands = {}
        for name, m in models.items():
            val = R.validation(m.run)
            truth, pred = R.to_um(val, R.candidates(m, "val", val, cache, bar, args.threads, False))
            m.threshold = best_threshold(truth, pred, R.MATCH_RADIUS_UM)["threshold"]
            cands[name] = {k: R.candidates(m, k, v, cache, bar, args.threads, False) for k, v in sets.items()}
    decided = {name: ({k: c[k] for k in sets}, models[name].threshold, None) for name, c in cands.items()}
    for spec in args.pair:
        a, b = spec.split(",")
        per = {
            k: R.ensemble_cands(v, cands[a][k], cands[b][k], models[a].threshold, models[b].threshold)
            for k, v in sets.items()
        }
        decided[f"{a} + {b}"] = ({k: p[1] for k, p in per.items()}, None, {k: p[0] for k, p in per.items()})
    for name, (c, t, alls) in decided.items():
        metrics = {"threshold": t if t is not None else float("nan")}
        d = R.detection_scores(sets["icpr"], c["icpr"], t, None if alls is None else alls["icpr"])
        metrics.update({f"icpr_{k}": d[k] for k in ("f1", "precision", "recall", "ap")})
        for k in area:
            metrics[f"{k}_per_mm2_tissue"] = R.tissue_scores(sets[k], c[k], t, area[k])["per_mm2_tissue"]
        if args.loso:
            metrics["loso_sensitivity"] = R.loso_scores(sets["loso"], c["loso"], t)["sensitivity"]
        rows.append((name, metrics))
    keys = list(rows[0][1])
    print("| run | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for name, m in rows:
        print(f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |")
    with atomic_open(args.out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "metric", "value"])
        w.writerows((name, k, v) for name, m in rows for k, v in m.items())


if __name__ == "__main__":
    main()
