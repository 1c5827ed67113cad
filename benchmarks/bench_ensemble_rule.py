"""Which rule joins the two models best (#17 item 3): the paper's agreement rule against the mean
probability, the larger probability, and each model alone, on the validation side of a pair.

    python benchmarks/bench_ensemble_rule.py [--a training-state/fields-ca-rgb] [--b training-state/fields-ca-od]

Scored on the held-back MITOS-ATYPIA-14 frames of the runs' split (every mitosis labelled) by the
official F1 (7.5 µm, pooled), with the thresholds chosen on the other half of the frames (two
folds: even / odd frames, each choosing for the other; the F1 pools the two test halves), and on
the validation crops (sensitivity, and false detections per mm² of the MIDOG 2021 crops, whose
every mitosis is labelled) at the thresholds chosen on all frames. Thresholds are searched in
logit space (quantiles of each model's candidates). Prints a table; writes
benchmarks/results/bench_ensemble_rule.csv.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mitodet.data.split import read_split  # noqa: E402
from mitodet.evaluate.matching import score_detection  # noqa: E402
from mitodet.infer.detector import Detector  # noqa: E402
from mitodet.infer.ensemble import agreement_pairs  # noqa: E402
from mitodet.io.atomic import atomic_open  # noqa: E402
from mitodet.schema import MATCH_RADIUS_UM  # noqa: E402
from mitodet.train.config import load_config  # noqa: E402
from mitodet.train.data import SplitData, labelled_records, validation_images  # noqa: E402
from mitodet.train.validate import detection_items  # noqa: E402

RULES = ("A alone", "B alone", "agreement (paper)", "mean probability", "larger probability")


def logit(p):
    p = np.clip(np.asarray(p, float), 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def joined(da, db, radius_px):
    """Per candidate location: (x, y, p_a, p_b); a model that found nothing there gives 0."""
    pairs = agreement_pairs(da, db, radius_px)
    ia, ib = {i for i, _ in pairs}, {j for _, j in pairs}
    out = [((da[i].x + db[j].x) / 2, (da[i].y + db[j].y) / 2, da[i].probability, db[j].probability) for i, j in pairs]
    out += [(d.x, d.y, d.probability, 0.0) for i, d in enumerate(da) if i not in ia]
    out += [(d.x, d.y, 0.0, d.probability) for j, d in enumerate(db) if j not in ib]
    return np.array(out, float).reshape(-1, 4)


def kept(rule, c, t):
    """Boolean mask of the joined candidates ``c`` that the rule calls mitotic figures at ``t``."""
    pa, pb = c[:, 2], c[:, 3]
    if rule == "A alone":
        return pa >= t[0]
    if rule == "B alone":
        return pb >= t[0]
    if rule == "agreement (paper)":
        return (pa >= t[0]) & (pb >= t[1])
    if rule == "mean probability":
        return (pa + pb) / 2 >= t[0]
    return np.maximum(pa, pb) >= t[0]


def grids(rule, cands):
    """Threshold candidates of a rule: quantiles (in logit space) of the scores it thresholds."""
    allc = np.concatenate([c for c in cands.values() if len(c)])
    pa, pb = allc[:, 2], allc[:, 3]

    def q(v, n=60):
        v = v[v > 0]
        return 1 / (1 + np.exp(-np.quantile(logit(v), np.linspace(0.3, 1.0, n)))) if len(v) else np.array([0.5])

    if rule == "A alone":
        return [(t,) for t in q(pa)]
    if rule == "B alone":
        return [(t,) for t in q(pb)]
    if rule == "agreement (paper)":
        return [(s, t) for s in q(pa, 30) for t in q(pb, 30)]
    if rule == "mean probability":
        return [(t,) for t in q((pa + pb) / 2)]
    return [(t,) for t in q(np.maximum(pa, pb))]


def counts(rule, cands, truth, ids, t, mpp):
    tp = fn = fp = 0
    for k in ids:
        c = cands[k]
        pts = c[kept(rule, c, t)][:, :2] * mpp[k] if len(c) else np.zeros((0, 2))
        s = score_detection([(x * mpp[k], y * mpp[k]) for x, y in truth[k]], pts, MATCH_RADIUS_UM)
        tp, fn, fp = tp + s.true_positives, fn + s.false_negatives, fp + s.false_positives
    return tp, fn, fp


def f1(tp, fn, fp):
    return 2 * tp / (2 * tp + fn + fp) if tp + fn + fp else float("nan")


def best(rule, cands, truth, ids, mpp):
    return max(grids(rule, cands), key=lambda t: f1(*counts(rule, cands, truth, ids, t, mpp)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", type=Path, default=ROOT / "training-state" / "fields-ca-rgb")
    ap.add_argument("--b", type=Path, default=ROOT / "training-state" / "fields-ca-od")
    ap.add_argument("--data", type=Path, default=None, help="data root (default $MITODET_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_ensemble_rule.csv")
    a = ap.parse_args()
    data = a.data or Path(__import__("os").environ.get("MITODET_DATA", ROOT.parent / "shared" / "data"))
    if not data.is_dir():
        sys.exit(f"the data folder {data} is absent (set MITODET_DATA)")
    cfg = load_config(a.a / "config.yaml", check_paths=False, data_root=data)
    split = SplitData(labelled_records(cfg), *read_split(a.a / "split.json"))
    items = detection_items(validation_images(split))
    dets = [Detector.from_checkpoint(r / "best.pt", threads=1) for r in (a.a, a.b)]
    cands, truth, mpp, area, group = {}, {}, {}, {}, {}
    for n, it in enumerate(items, 1):
        da, db = (d.candidates(it.image, it.mpp, floor=0.01) for d in dets)
        cands[it.id] = joined(da, db, MATCH_RADIUS_UM / it.mpp)
        truth[it.id] = [(p.x, p.y) for p in it.points]
        mpp[it.id], area[it.id], group[it.id] = it.mpp, it.area_mm2, ("field" if it.field else it.group)
        print(f"\r{n}/{len(items)} validation images", end="", flush=True)
    print()
    fields = sorted(k for k, g in group.items() if g == "field")
    folds = (fields[0::2], fields[1::2])
    midog = [k for k, g in group.items() if g != "field" and area[k] > 0]
    crops = [k for k, g in group.items() if g != "field"]
    rows = []
    for rule in RULES:
        test = [0, 0, 0]
        for cal, held in (folds, folds[::-1]):
            t = best(rule, cands, truth, cal, mpp)
            test = [x + y for x, y in zip(test, counts(rule, cands, truth, held, t, mpp), strict=True)]
        t_all = best(rule, cands, truth, fields, mpp)
        tp, fn, fp = counts(rule, cands, truth, crops, t_all, mpp)
        _, _, fp_m = counts(rule, cands, truth, midog, t_all, mpp)
        mm2 = sum(area[k] for k in midog)
        rows.append(
            {
                "rule": rule,
                "fields_f1_2fold": round(f1(*test), 4),
                "fields_tp_fn_fp": "/".join(map(str, test)),
                "thresholds_all_frames": " / ".join(f"{x:.4f}" for x in t_all),
                "thresholds_logit": " / ".join(f"{math.log(x / (1 - x)):.2f}" for x in t_all),
                "crops_sensitivity": round(tp / (tp + fn), 4) if tp + fn else float("nan"),
                "midog21_crops_fp_per_mm2": round(fp_m / mm2, 2) if mm2 else float("nan"),
            }
        )
    print(f"{len(fields)} held-back frames ({sum(len(truth[k]) for k in fields)} mitoses), {len(crops)} crops")
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(a.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
