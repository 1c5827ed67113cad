"""Adaptation to a lab measured on fields it never saw (issue #22), through the command line:

* MITOS-ATYPIA-14: ``mitodet finetune`` on the 77 frames that the fields runs of issue #17 train
  on (its 19 held-back frames left out), then the bundled and the adapted pair scored on those 19
  frames with the official scorer;
* ICPR 2012 as a second lab: the 50 patches split by source image (``A00_01`` of
  ``A00_01_0.jpg``, seeded), adapted on one half and scored on the other.

Each adaptation runs ``mitodet finetune`` at its default budget (15 minutes for both models) in
its own process. ``--recalibrate`` also runs ``mitodet finetune --calibrate-only`` on the same
adaptation images (thresholds chosen there, weights unchanged) and scores that pair on the same
test images: how much of the gain the thresholds alone buy. ``--recalibrate-only`` runs that alone
and keeps the fine-tuning columns of the CSV. Every run also scores the ceiling of thresholds: the
bundled pair at the one logit shift that is best for the test images themselves (chosen where it
is scored, so no rule can beat it; the rest of a gain has to come from the weights);
``--ceiling-only`` measures just that and keeps the other columns. ``--seed N`` runs the
adaptation with another seed (its calibration split and training; the test fields stay): one row
per lab and seed, to see how much one run's number moves. Prints a table; writes
benchmarks/results/bench_finetune.csv.

    python benchmarks/bench_finetune.py [--only ma14 icpr] [--minutes 15] [--threads 2] [--work DIR]
                                        [--recalibrate | --recalibrate-only | --ceiling-only] [--seed N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mitodet.data.fields import MITOS_ATYPIA14_MPP  # noqa: E402
from mitodet.infer.run import load_detectors  # noqa: E402
from mitodet.io.atomic import write_csv  # noqa: E402
from mitodet.resources import DEFAULT_MODELS  # noqa: E402
from mitodet.schema import Point  # noqa: E402
from mitodet.train.finetune import official_f1 as finetune_f1  # noqa: E402
from mitodet.train.labels import LabelledImage  # noqa: E402
from mitodet.train.recalibrate import best_shift, candidates, scores, shifted  # noqa: E402

DATA = Path(os.environ.get("MITODET_DATA", ROOT.parent / "shared" / "data"))
CSV = ROOT / "benchmarks" / "results" / "bench_finetune.csv"
ICPR_MPP = 0.2456
ADAPTED = ["minutes", "f1_adapted", "gain", "adapted_tp_fp_fn"]
RECALIBRATED = ["minutes_recalibrated", "f1_recalibrated", "gain_recalibrated", "recalibrated_tp_fp_fn"]
CEILING = ["f1_threshold_ceiling", "ceiling_shift"]
COLUMNS = ["lab", "seed", "adapt_images", "test_images", "test_mitoses", "f1_bundled", "bundled_tp_fp_fn", *ADAPTED,
           *RECALIBRATED, *CEILING]  # fmt: skip


def ma14(work: Path) -> tuple[list[Path], Path, list[tuple[Path, list]], float]:
    root = DATA / "mitos_atypia14"
    split = json.loads((ROOT / "training-state" / "fields-ca-rgb" / "split.json").read_text())
    held = {i.removeprefix("ma14_") for i in split["val"] if i.startswith("ma14_")}
    rows = list(csv.DictReader(open(root / "labels.csv", newline="")))
    frames = sorted((root / "frames").glob("*.jpg"))
    table = work / "ma14-labels.csv"
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "x", "y", "label"])
        for f in frames:
            pts = [r for r in rows if r["frame"] == f.stem]
            name = {"mitosis": "mitotic figure", "non-mitosis": "non-mitotic figure"}
            w.writerows([[f.name, r["x"], r["y"], name[r["label"]]] for r in pts] or [[f.name, "", "", ""]])
    test = [(f, [(float(r["x"]), float(r["y"])) for r in rows if r["frame"] == f.stem and r["label"] == "mitosis"])
            for f in frames if f.stem in held]  # fmt: skip
    return [f for f in frames if f.stem not in held], table, test, MITOS_ATYPIA14_MPP


def icpr(work: Path) -> tuple[list[Path], Path, list[tuple[Path, list]], float]:
    root = DATA / "icpr2012_patches"
    rows = list(csv.DictReader(open(root / "mitoses.csv", newline="")))
    sources = sorted({r["patch"].rsplit("_", 1)[0] for r in rows})
    random.Random(0).shuffle(sources)
    test_src = set(sources[: len(sources) // 2])
    table = work / "icpr-labels.csv"
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "x", "y"])
        w.writerows([[r["patch"], r["cx"], r["cy"]] for r in rows])
    patches = sorted({r["patch"] for r in rows})
    adapt = [root / "images" / p for p in patches if p.rsplit("_", 1)[0] not in test_src]
    test = [(root / "images" / p, [(float(r["cx"]), float(r["cy"])) for r in rows if r["patch"] == p and r["cx"]])
            for p in patches if p.rsplit("_", 1)[0] in test_src]  # fmt: skip
    return adapt, table, test, ICPR_MPP


def _labelled(test: list[tuple[Path, list]], mpp: float) -> list[LabelledImage]:
    return [LabelledImage(path, mpp, [Point(x, y) for x, y in pts]) for path, pts in test]


def official_f1(models: list[Path], test: list[tuple[Path, list]], mpp: float) -> dict:
    return finetune_f1(load_detectors(models, threads=1), _labelled(test, mpp))[0]


def threshold_ceiling(models: list[Path], test: list[tuple[Path, list]], mpp: float) -> dict:
    """The pair's official F1 at the one logit shift of its thresholds that is best on ``test``."""
    dets = load_detectors(models, threads=1)
    cands = candidates(dets, _labelled(test, mpp))
    keys, given = list(cands), [d.threshold for d in dets]
    shift = best_shift(cands, keys, given)
    return {"f1_threshold_ceiling": round(scores(cands, keys, shifted(given, shift))["f1"], 3),
            "ceiling_shift": shift}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=["ma14", "icpr"])
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-finetune")
    ap.add_argument("--recalibrate", action="store_true", help="also the thresholds alone (--calibrate-only)")
    ap.add_argument("--recalibrate-only", action="store_true", help="only that; keep the CSV's fine-tuning columns")
    ap.add_argument("--ceiling-only", action="store_true", help="only the ceiling of thresholds; keep the rest")
    ap.add_argument("--seed", type=int, default=0, help="seed of the adaptation (split and training)")
    args = ap.parse_args()
    key = lambda r: (r["lab"], str(r.get("seed") or 0))  # noqa: E731  (rows from before --seed were seed 0)
    old = {key(r): r for r in csv.DictReader(open(CSV, newline=""))} if CSV.is_file() else {}
    rows = []
    for lab in args.only:
        work = args.work / (lab if args.seed == 0 else f"{lab}-seed{args.seed}")
        work.mkdir(parents=True, exist_ok=True)
        adapt, table, test, mpp = {"ma14": ma14, "icpr": icpr}[lab](work)
        base = [sys.executable, "-m", "mitodet", "finetune", *map(str, adapt), "--truth", str(table),
                "--mpp", str(mpp), "--threads", str(args.threads), "--seed", str(args.seed)]  # fmt: skip
        env = {**os.environ, "MITODET_DATA": str(DATA)}
        before = official_f1(list(DEFAULT_MODELS), test, mpp)
        n = sum(len(p) for _, p in test)
        was = old.get((lab, str(args.seed)), {})
        row = {"lab": lab, "seed": args.seed, "adapt_images": len(adapt), "test_images": len(test), "test_mitoses": n,
               "f1_bundled": round(before["f1"], 3),
               "bundled_tp_fp_fn": f"{before['tp']}/{before['fp']}/{before['fn']}"}  # fmt: skip
        row |= threshold_ceiling(list(DEFAULT_MODELS), test, mpp)
        if args.recalibrate_only or args.ceiling_only:
            row |= {k: was.get(k, "") for k in ADAPTED}
            if was.get("f1_adapted"):  # the kept adapted pair against the bundled pair as it is now
                row["gain"] = round(float(was["f1_adapted"]) - before["f1"], 3)
        else:
            out = work / "adapted"
            t0 = time.perf_counter()
            subprocess.run([*base, "--out", str(out), "--minutes", str(args.minutes)], check=True, env=env)
            after = official_f1(sorted(out.glob("adapted-*.pt")), test, mpp)
            row |= {"minutes": round((time.perf_counter() - t0) / 60, 1), "f1_adapted": round(after["f1"], 3),
                    "gain": round(after["f1"] - before["f1"], 3),
                    "adapted_tp_fp_fn": f"{after['tp']}/{after['fp']}/{after['fn']}"}  # fmt: skip
        if args.recalibrate or args.recalibrate_only:
            out = work / "recalibrated"
            t0 = time.perf_counter()
            subprocess.run([*base, "--out", str(out), "--calibrate-only"], check=True, env=env)
            rec = official_f1(sorted(out.glob("recalibrated-*.pt")), test, mpp)
            row |= {"minutes_recalibrated": round((time.perf_counter() - t0) / 60, 1),
                    "f1_recalibrated": round(rec["f1"], 3), "gain_recalibrated": round(rec["f1"] - before["f1"], 3),
                    "recalibrated_tp_fp_fn": f"{rec['tp']}/{rec['fp']}/{rec['fn']}"}  # fmt: skip
        else:
            row |= {k: was.get(k, "") for k in RECALIBRATED}
        rows.append(row)
        print(rows[-1], flush=True)
    print(f"{'lab':6} {'seed':>4} {'adapt':>6} {'test':>5} {'MFs':>4} {'F1 bundled':>10} {'recalibrated':>12} "
          f"{'ceiling':>8} {'adapted':>8}")  # fmt: skip
    for r in rows:
        print(f"{r['lab']:6} {r['seed']:>4} {r['adapt_images']:>6} {r['test_images']:>5} {r['test_mitoses']:>4} "
              f"{r['f1_bundled']:>10} {r['f1_recalibrated']:>12} {r['f1_threshold_ceiling']:>8} "
              f"{r['f1_adapted']:>8}")  # fmt: skip
    merged = old | {key(r): r for r in rows}  # labs and seeds left out keep their rows, in the CSV's order
    write_csv(CSV, COLUMNS, [{k: r.get(k, "") for k in COLUMNS} for r in merged.values()])


if __name__ == "__main__":
    main()
