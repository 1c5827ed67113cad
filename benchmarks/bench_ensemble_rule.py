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

``--bundled`` asks the same of the bundled pair, on the three fully labelled sources it never
trained on (those of ``bench_threshold_transfer.py``, whose candidate cache it shares): all 96
MITOS-ATYPIA-14 frames, the 50 ICPR 2012 patches and its MIDOG 2021 validation crops. Per rule:
the best F1 of each source at its own thresholds (what the rule can do there), and at the
thresholds chosen on the two other sources pooled (what it keeps in a lab it was not calibrated
on, leave-one-source-out), and the agreement at the stored thresholds. Writes
benchmarks/results/bench_ensemble_rule_bundled.csv.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tables import show_and_write  # noqa: E402

from mitodet.data.split import read_split  # noqa: E402
from mitodet.evaluate.matching import score_detection  # noqa: E402
from mitodet.infer.detector import Detector  # noqa: E402
from mitodet.infer.ensemble import agreement_pairs  # noqa: E402
from mitodet.io.atomic import write_csv  # noqa: E402
from mitodet.schema import MATCH_RADIUS_UM  # noqa: E402
from mitodet.train.config import load_config  # noqa: E402
from mitodet.train.data import SplitData, labelled_records, validation_images  # noqa: E402
from mitodet.train.validate import detection_items  # noqa: E402

FLOOR = 0.05  # candidates' floor of the --bundled cache
FIXED_GRID = False  # --bundled: logit_grid
RULES = ("A alone", "B alone", "agreement (paper)", "mean probability", "larger probability")
MEAN_LOGIT = "mean logit"  # --bundled: a model without a candidate there counts at the candidate floor


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
    if rule == MEAN_LOGIT:
        return (logit(np.maximum(pa, FLOOR)) + logit(np.maximum(pb, FLOOR))) / 2 >= logit(t[0])
    return np.maximum(pa, pb) >= t[0]


def logit_grid(rule):
    """--bundled: thresholds on a fixed logit grid (0 to 10; step 0.2, or 0.4 for each of a pair):
    quantiles of all candidates leave the top, where thresholds sit, coarse on 96 whole frames."""
    g = 1 / (1 + np.exp(-np.arange(0.0, 10.001, 0.2)))
    return [(s, t) for s in g[::2] for t in g[::2]] if rule == "agreement (paper)" else [(t,) for t in g]


def grids(rule, cands):
    """Threshold candidates of a rule: quantiles (in logit space) of the scores it thresholds."""
    if FIXED_GRID:
        return logit_grid(rule)
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
    if rule == MEAN_LOGIT:
        return [(t,) for t in q(1 / (1 + np.exp(-(logit(np.maximum(pa, FLOOR)) + logit(np.maximum(pb, FLOOR))) / 2)))]
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


def bundled(out: Path) -> None:
    """The rules on the bundled pair, source by source (see the module's ``--bundled``)."""
    import bench_threshold_transfer as btt

    from mitodet.model import load_checkpoint
    from mitodet.resources import DEFAULT_MODELS
    from mitodet.schema import Detection

    global FIXED_GRID
    FIXED_GRID = True
    a, b = DEFAULT_MODELS
    meta = [load_checkpoint(m)[1] for m in (a, b)]
    data = btt.sources(set((meta[0].get("validation") or {}).get("ids", [])))
    cands, truth, ids = {}, {}, {}
    for s, items in data.items():  # candidates in µm (the cache of bench_threshold_transfer), paired at 7.5 µm
        ca, cb = btt.candidates(a, s, items, 1), btt.candidates(b, s, items, 1)
        for iid, _, mpp, pts in items:
            da, db = ([Detection(*r) for r in c[iid]] for c in (ca, cb))
            cands[iid] = joined(da, db, MATCH_RADIUS_UM)
            truth[iid] = [(x * mpp, y * mpp) for x, y in pts]
        ids[s] = [i[0] for i in items]
    one = dict.fromkeys(cands, 1.0)  # everything is in µm already
    names, rows = list(data), []
    stored = tuple(float(m["threshold"]) for m in meta)
    for rule in (*RULES, MEAN_LOGIT):
        per = {s: {k: cands[k] for k in ids[s]} for s in names}
        row = {"rule": rule}
        for s in names:
            own = best(rule, per[s], truth, ids[s], one)
            rest = [o for o in names if o != s]
            pool = {k: v for o in rest for k, v in per[o].items()}
            loso = best(rule, pool, truth, [k for o in rest for k in ids[o]], one)
            row[f"best F1 {s}"] = round(f1(*counts(rule, cands, truth, ids[s], own, one)), 3)
            row[f"logit {s}"] = " / ".join(f"{math.log(x / (1 - x)):.1f}" for x in own)
            row[f"LOSO F1 {s}"] = round(f1(*counts(rule, cands, truth, ids[s], loso, one)), 3)
        row["LOSO mean"] = round(float(np.mean([row[f"LOSO F1 {s}"] for s in names])), 3)
        if rule == "agreement (paper)":
            row |= {f"stored F1 {s}": round(f1(*counts(rule, cands, truth, ids[s], stored, one)), 3) for s in names}
        rows.append(row)
        print(" | ".join(str(v) for v in row.values()), flush=True)
    write_csv(out, list(dict.fromkeys(k for r in rows for k in r)), rows)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", type=Path, default=ROOT / "training-state" / "fields-ca-rgb")
    ap.add_argument("--b", type=Path, default=ROOT / "training-state" / "fields-ca-od")
    ap.add_argument("--data", type=Path, default=None, help="data root (default $MITODET_DATA or ../shared/data)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--bundled", action="store_true", help="the bundled pair on three unseen sources")
    a = ap.parse_args()
    results = ROOT / "benchmarks" / "results"
    if a.bundled:
        return bundled(a.out or results / "bench_ensemble_rule_bundled.csv")
    a.out = a.out or results / "bench_ensemble_rule.csv"
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
    show_and_write(rows, a.out)


if __name__ == "__main__":
    main()
