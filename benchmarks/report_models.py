"""Measured report of the bundled default models and their comparisons (issue #7).

    python benchmarks/report_models.py [--runs runs] [--data ../shared/data] [--no-paper] [--threads 2]

Re-runs every number from the checkpoints (candidates cached per checkpoint and dataset in
``runs/report_cache/*.npz``, so a second run only re-scores):

* thresholds: the bundled checkpoints keep the one stored in their meta; every other
  checkpoint is calibrated here on its OWN run's validation split (pooled F1, 7.5 µm),
  exactly like ``mitodet calibrate`` (its candidates at floor 0.01 + ``best_threshold``);
* ICPR 2012 (50 patches, 0.2456 µm/px): F1 / precision / recall at that threshold, AP, and
  the oracle F1 (threshold chosen on ICPR itself: optimistic, shows ranking vs calibration);
* leave-one-scanner-out: each LOSO model on every crop of the scanner it never saw:
  sensitivity (crop-centre MF found within 7.5 µm), F1 against every labelled MF of
  ``labels_in_crops.csv``, unmatched detections per mm² of crop area;
* tissue: detections per mm² on the 15 MoNuSeg tiles NOT used in training and on the 37
  CCMCT tiles, per mm² of tile and per mm² of tissue (mean grey over 8 µm <= 0.86, the
  background rule of training's tissue windows).

Writes docs/results/report.csv (variant, dataset, metric, value), docs/results/report.png
and prints markdown tables (also written to docs/results/report_tables.md).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from mitodet.schema import MATCH_RADIUS_UM, MITOTIC_FIGURE  # noqa: E402

console = Console(stderr=True)
SCANNERS = ["Hamamatsu XR", "Hamamatsu S360", "Aperio CS2"]
CAL_FLOOR = 0.01  # = mitodet.infer.calibrate.CALIBRATION_FLOOR: candidates cached down to this
AP_HALF_UM = 11.25  # the official AP box half-side (BOX_HALF_MM) in µm
CROP_MM2 = 128 * 128 * 0.25**2 / 1e6
CACHED_ONLY = False  # --cached-only: tables from the cache alone, missing parts left out


class NotCached(Exception):
    """A (checkpoint, dataset) pair whose candidates are not cached (with --cached-only)."""


# ----------------------------------------------------------------------------- models
class Model:
    """One checkpoint; ``run`` is the run folder whose validation split calibrates it (None: bundled)."""

    def __init__(self, name: str, ckpt: Path, run: Path | None):
        self.name, self.ckpt, self.run = name, ckpt, run
        self._det = None
        self.threshold: float | None = None
        self.val: dict = {}

    @property
    def key(self) -> str:
        rel = str(self.ckpt.resolve().relative_to(ROOT)) if self.ckpt.resolve().is_relative_to(ROOT) else str(self.ckpt)
        return rel.replace("/", "_").removesuffix(".pt")

    def detector(self, threads: int):
        if self._det is None:
            from mitodet.infer import Detector

            self._det = Detector.from_checkpoint(self.ckpt, threads=threads)
        return self._det


def best_round(run: Path) -> Path:
    """The round folder with the highest val_f1 in RUN/hard_mining.csv (RUN itself if absent)."""
    table = run / "hard_mining.csv"
    if not table.is_file():
        return run
    rows = list(csv.DictReader(table.open()))
    best = max(rows, key=lambda r: float(r["val_f1"]))
    p = Path(best["run"])
    return p if p.is_absolute() else ROOT / p


def round_dir(run: Path, k: int) -> Path:
    return run if k == 0 else run / f"round{k}"


# ----------------------------------------------------------------------------- datasets
class Item:
    """An image of a dataset: id, mpp, MF points (pixels), lazy pixels, optional centre MF."""

    def __init__(self, id: str, path: Path, mpp: float, points, centre=None):
        self.id, self.path, self.mpp, self.points, self.centre = id, path, mpp, points, centre

    def pixels(self) -> np.ndarray:
        from mitodet.io.image import read_image

        return read_image(self.path, self.mpp)[0]


def crops_by_scanner(data: Path) -> dict[str, list[Item]]:
    from mitodet.data.crops import load_midog21_crops

    ds = load_midog21_crops(data / "midog21_crops")
    centre = {}  # crop file stem -> the crop-centre MF (is_center=1 in labels_in_crops.csv)
    with open(data / "midog21_crops" / "labels_in_crops.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r.get("is_center") == "1":
                centre[Path(r["file"]).stem] = (float(r["x"]), float(r["y"]))
    out: dict[str, list[Item]] = {s: [] for s in SCANNERS}
    for r in ds.images:
        mfs = [(p.x, p.y) for p in r.points if p.label == MITOTIC_FIGURE]
        out.setdefault(r.domain["scanner"], []).append(Item(r.id, r.path, r.mpp, mfs, centre.get(r.id, (64.0, 64.0))))
    return out


def icpr(data: Path) -> list[Item]:
    from mitodet.data.crops import load_icpr2012

    return [
        Item(r.id, r.path, r.mpp, [(p.x, p.y) for p in r.points])
        for r in load_icpr2012(data / "icpr2012_patches").images
    ]


def tissue(data: Path, config: Path) -> dict[str, list[Item]]:
    """Held-out MoNuSeg tiles (not in the config's data.tissue) and all CCMCT tiles."""
    import yaml

    from mitodet.data.crops import load_tissue

    used = {Path(p).stem for p in yaml.safe_load(config.read_text())["data"]["tissue"]}
    mon = [r for r in load_tissue(data / "tissue", "monuseg").images if r.id not in used]
    cc = load_tissue(data / "tissue", "ccmct").images
    return {
        "monuseg-heldout": [Item(r.id, r.path, r.mpp, []) for r in mon],
        "ccmct": [Item(r.id, r.path, r.mpp, []) for r in cc],
    }


def validation(run: Path) -> list[Item]:
    from mitodet.train.rundir import load_validation_set

    return [Item(v.id, v.path, v.mpp, [(p.x, p.y) for p in v.points]) for v in load_validation_set(run)]


# ----------------------------------------------------------------------------- candidates (cached)
def candidates(
    model: Model, dataset: str, items: list[Item], cache: Path, bar: Progress, threads: int, fresh: bool
) -> dict[str, np.ndarray]:
    """id -> (n, 3) array of candidate (x, y, probability) in image pixels, probability > 0.01."""
    ids = [it.id for it in items]
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:10]
    path = cache / f"{model.key}__{dataset}__{digest}.npz"
    if path.is_file() and not fresh:
        z = np.load(path)
        return {k: z[f"c_{k}"] for k in ids}
    if CACHED_ONLY:
        raise NotCached(path.name)
    det = model.detector(threads)
    task = bar.add_task(f"{model.name} / {dataset}", total=len(items))
    out = {}
    for it in items:
        c = det.candidates(it.pixels(), it.mpp, floor=CAL_FLOOR)
        out[it.id] = np.array([(d.x, d.y, d.probability) for d in c], dtype=np.float64).reshape(-1, 3)
        bar.advance(task)
    from mitodet.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{f"c_{k}": v for k, v in out.items()})
    return out


TISSUE_MAX_BRIGHTNESS = 0.86  # = the training config's tissue_max_brightness (background cut)
TISSUE_SMOOTH_UM = 8.0  # brightness averaged over ~a nucleus so gaps between cells count as tissue


def tissue_area(items: list[Item], cache: Path) -> dict[str, tuple[float, float]]:
    """id -> (tile mm², tissue mm²); tissue = pixels whose mean grey level over an 8 µm square is
    <= 0.86, the brightness rule training uses to drop background windows (cached JSON)."""
    from scipy.ndimage import uniform_filter

    from mitodet.io.atomic import write_text

    tag = hashlib.sha1("".join(i.id for i in items).encode()).hexdigest()[:10]
    path = cache / f"tissue_area_grey{TISSUE_MAX_BRIGHTNESS}__{tag}.json"
    if path.is_file():
        return {k: tuple(v) for k, v in json.loads(path.read_text()).items()}
    out = {}
    for it in items:
        img = it.pixels()
        grey = uniform_filter(img.astype(np.float32).mean(axis=-1) / 255, size=round(TISSUE_SMOOTH_UM / it.mpp))
        px_mm2 = it.mpp**2 / 1e6
        out[it.id] = (img.shape[0] * img.shape[1] * px_mm2, float((grey <= TISSUE_MAX_BRIGHTNESS).sum()) * px_mm2)
    write_text(path, json.dumps(out))
    return out


# ----------------------------------------------------------------------------- scoring
def to_um(items: list[Item], cands: dict[str, np.ndarray], t: float | None = None):
    truth = {it.id: [(x * it.mpp, y * it.mpp) for x, y in it.points] for it in items}
    pred = {it.id: [(x * it.mpp, y * it.mpp, p) for x, y, p in cands[it.id] if t is None or p >= t] for it in items}
    return truth, pred


def ensemble_cands(items: list[Item], ca: dict, cb: dict, ta: float, tb: float) -> tuple[dict, dict]:
    """The agreement ensemble (``mitodet.infer.ensemble``) per image: (all outputs, MF-labelled only)."""
    from mitodet.infer.detector import NON_MITOTIC, Detection
    from mitodet.infer.ensemble import ensemble

    def dets(c, t):
        return [Detection(x, y, p, MITOTIC_FIGURE if p >= t else NON_MITOTIC) for x, y, p in c]

    alls, mf = {}, {}
    for it in items:
        e = ensemble(dets(ca[it.id], ta), dets(cb[it.id], tb), MATCH_RADIUS_UM / it.mpp)
        alls[it.id] = np.array([(d.x, d.y, d.probability) for d in e]).reshape(-1, 3)
        mf[it.id] = np.array([(d.x, d.y, d.probability) for d in e if d.label == MITOTIC_FIGURE]).reshape(-1, 3)
    return alls, mf


def detection_scores(items, cands, t, all_cands=None) -> dict:
    """F1/P/R at ``t`` (None: ``cands`` already decided), AP and oracle F1 on ``all_cands``."""
    from mitodet.evaluate import average_precision, best_threshold, score

    truth, pred = to_um(items, cands, t)
    s = score(truth, pred, MATCH_RADIUS_UM)
    truth, everything = to_um(items, cands if all_cands is None else all_cands)
    ap = average_precision([truth[k] for k in truth], [everything[k] for k in truth], half=AP_HALF_UM)
    oracle = best_threshold(truth, everything, MATCH_RADIUS_UM)
    return {
        "f1": s["f1"],
        "precision": s["precision"],
        "recall": s["recall"],
        "tp": s["tp"],
        "fp": s["fp"],
        "fn": s["fn"],
        "ap": ap,
        "oracle_f1": oracle["f1"],
        "oracle_threshold": oracle["threshold"],
    }


def loso_scores(items: list[Item], cands: dict, t: float | None) -> dict:
    """Sensitivity on the crop-centre MF, F1 on all labelled MFs, unmatched detections per mm²."""
    from mitodet.evaluate import score

    found = 0
    for it in items:
        c = cands[it.id]
        c = c if t is None else c[c[:, 2] >= t]
        if len(c) and (np.hypot(c[:, 0] - it.centre[0], c[:, 1] - it.centre[1]) * it.mpp <= MATCH_RADIUS_UM).any():
            found += 1
    truth, pred = to_um(items, cands, t)
    s = score(truth, pred, MATCH_RADIUS_UM)
    return {
        "n_crops": len(items),
        "sensitivity": found / len(items),
        "f1": s["f1"],
        "precision": s["precision"],
        "recall": s["recall"],
        "fp_per_mm2": s["fp"] / (len(items) * CROP_MM2),
    }


def tissue_scores(items: list[Item], cands: dict, t: float | None, area: dict) -> dict:
    n = sum(int((cands[it.id][:, 2] >= t).sum()) if t is not None else len(cands[it.id]) for it in items)
    tile = sum(area[it.id][0] for it in items)
    tis = sum(area[it.id][1] for it in items)
    return {"detections": n, "tile_mm2": tile, "tissue_mm2": tis, "per_mm2_tile": n / tile, "per_mm2_tissue": n / tis}


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=ROOT / "runs")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument(
        "--bundled",
        nargs=2,
        type=Path,
        default=None,
        help="CA-RGB and CA-OD checkpoints (default RUNS/gpu2/ca-rgb/best.pt RUNS/gpu2/ca-od/best.pt)",
    )
    ap.add_argument("--cache", type=Path, default=None, help="default RUNS/report_cache")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-paper", action="store_true", help="skip the slow 73-layer paper model")
    ap.add_argument("--rounds-tissue", action="store_true", help="also run hard-mining rounds 0/1 on tissue")
    ap.add_argument("--fresh", action="store_true", help="ignore cached candidates")
    ap.add_argument(
        "--cached-only",
        action="store_true",
        help="tables from cached candidates only (parts not yet computed are left out)",
    )
    args = ap.parse_args(argv)
    global CACHED_ONLY
    CACHED_ONLY = args.cached_only

    import torch

    torch.set_num_threads(args.threads)
    runs, data = args.runs, args.data
    cache = args.cache or runs / "report_cache"
    cache.mkdir(parents=True, exist_ok=True)
    g = runs / "gpu"
    bundled = args.bundled or [runs / "gpu2" / "ca-rgb" / "best.pt", runs / "gpu2" / "ca-od" / "best.pt"]

    def m(name, run):
        return Model(name, run / "best.pt", run)

    B = {"CA-RGB": Model("bundled CA-RGB", bundled[0], None), "CA-OD": Model("bundled CA-OD", bundled[1], None)}
    S = {
        "CA-RGB": m("CA-RGB", best_round(g / "ca-rgb")),
        "CA-OD": m("CA-OD", best_round(g / "ca-od")),
        "plain CA-RGB": m("plain CA-RGB", best_round(g / "plain-ca-rgb")),
    }
    if not args.no_paper:
        S["paper CA-RGB"] = m("paper CA-RGB", best_round(g / "paper-ca-rgb"))
    R = {k: m(f"CA-RGB round {k}", round_dir(g / "ca-rgb", k)) for k in (0, 1, 2)}
    L = {
        (s, p): m(f"LOSO {s} {p}", best_round(g / f"loso-{s.lower().replace(' ', '-')}-{p.lower()}"))
        for s in SCANNERS
        for p in ("CA-RGB", "CA-OD")
    }

    crops = crops_by_scanner(data)
    icpr_items = icpr(data)
    tis = tissue(data, ROOT / "configs" / "default-ca-rgb.yaml")
    rows: list[tuple[str, str, str, float]] = []

    def emit(variant, dataset, metrics):
        rows.extend((variant, dataset, k, float(v)) for k, v in metrics.items())

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:

        def cands(model, dataset, items):
            return candidates(model, dataset, items, cache, bar, args.threads, args.fresh)

        def calibrate(model: Model):
            """Threshold from the model's own validation split (bundled: the stored one)."""
            from mitodet.evaluate import best_threshold

            if model.threshold is not None:
                return
            if model.run is None:
                model.threshold = model.detector(args.threads).threshold
                return
            items = validation(model.run)
            truth, pred = to_um(items, cands(model, "val", items))
            b = best_threshold(truth, pred, MATCH_RADIUS_UM)
            model.threshold, model.val = b["threshold"], {"val_f1": b["f1"], "n_val": len(items)}

        def pair(name, a: Model, b: Model, items, dataset, kind):
            calibrate(a)
            calibrate(b)
            ca, cb = cands(a, dataset, items), cands(b, dataset, items)
            res = {}
            for mod, c in ((a, ca), (b, cb)):
                res[mod.name] = kind(items, c, mod.threshold)
            alls, mf = ensemble_cands(items, ca, cb, a.threshold, b.threshold)
            res[name] = kind(items, mf, None, alls) if kind is detection_scores else kind(items, mf, None)
            return res

        def guarded(label, fn):
            try:
                fn()
            except NotCached as err:
                console.print(f"[yellow]left out (not cached): {label} ({err})[/]")

        def emit_pair(ens, a, b, items, ds, kind, rename=lambda k: k):
            for k, v in pair(ens, a, b, items, ds, kind).items():
                emit(rename(k), ds if not ds.startswith("crops-") else "loso " + ds[6:], v)

        def tissue_kind(area):
            return lambda i, c, t: tissue_scores(i, c, t, area)

        def single(mod, ds, items, kind):
            calibrate(mod)
            emit(mod.name, ds, kind(items, cands(mod, ds, items), mod.threshold))

        areas = {ds: tissue_area(items, cache) for ds, items in tis.items()}
        # 1. bundled pair: ICPR + tissue
        guarded(
            "bundled icpr",
            lambda: emit_pair("bundled ensemble", B["CA-RGB"], B["CA-OD"], icpr_items, "icpr", detection_scores),
        )
        for ds, items in tis.items():
            guarded(
                f"bundled {ds}",
                lambda ds=ds, items=items: emit_pair(
                    "bundled ensemble", B["CA-RGB"], B["CA-OD"], items, ds, tissue_kind(areas[ds])
                ),
            )
        # 2. leave-one-scanner-out
        for s in SCANNERS:
            guarded(
                f"LOSO {s}",
                lambda s=s: emit_pair(
                    f"LOSO {s} ensemble",
                    L[s, "CA-RGB"],
                    L[s, "CA-OD"],
                    crops[s],
                    f"crops-{s}",
                    loso_scores,
                    rename=lambda k, s=s: k.replace(f"LOSO {s} ", "LOSO "),
                ),
            )
        # 3. same-budget models and the hard-mining rounds
        guarded(
            "same-budget icpr",
            lambda: emit_pair("ensemble", S["CA-RGB"], S["CA-OD"], icpr_items, "icpr", detection_scores),
        )
        for mod in [S["plain CA-RGB"], R[0], R[1], R[2]]:
            guarded(f"{mod.name} icpr", lambda mod=mod: single(mod, "icpr", icpr_items, detection_scores))
        for ds, items in tis.items():
            guarded(
                f"same-budget {ds}",
                lambda ds=ds, items=items: emit_pair(
                    "ensemble", S["CA-RGB"], S["CA-OD"], items, ds, tissue_kind(areas[ds])
                ),
            )
            mods = [S["plain CA-RGB"]] + ([R[0], R[1]] if args.rounds_tissue else [])
            for mod in mods:
                guarded(
                    f"{mod.name} {ds}",
                    lambda mod=mod, ds=ds, items=items: single(mod, ds, items, tissue_kind(areas[ds])),
                )
        # 4. the slow 73-layer paper model last
        if "paper CA-RGB" in S:
            guarded("paper icpr", lambda: single(S["paper CA-RGB"], "icpr", icpr_items, detection_scores))
            for ds, items in tis.items():
                guarded(
                    f"paper {ds}",
                    lambda ds=ds, items=items: single(S["paper CA-RGB"], ds, items, tissue_kind(areas[ds])),
                )

    models = [*B.values(), *S.values(), *R.values(), *L.values()]
    for mod in models:
        if mod.threshold is not None:
            emit(mod.name, "calibration", {"threshold": mod.threshold, **mod.val})
    write_outputs(rows, models, args.out)


# ----------------------------------------------------------------------------- outputs
def write_outputs(rows, models, out: Path) -> None:
    from mitodet.io.atomic import atomic_open, write_text

    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "report.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variant", "dataset", "metric", "value"])
        w.writerows((v, d, k, f"{x:.6g}") for v, d, k, x in rows)
    val = {(v, d, k): x for v, d, k, x in rows}
    md = markdown(val, models)
    print(md)
    write_text(out / "report_tables.md", md)
    plot(val, out / "report.png")
    console.print(f"wrote {out / 'report.csv'}, {out / 'report.png'}, {out / 'report_tables.md'}")


def _rel(p: Path) -> Path:
    """``p`` relative to the project root when inside it."""
    return p.resolve().relative_to(ROOT) if p.resolve().is_relative_to(ROOT) else p


def _f(x, fmt="{:.3f}"):
    return "n/a" if x is None else fmt.format(x)


def markdown(val: dict, models) -> str:
    g = val.get
    lines = [
        "### ICPR 2012 (50 patches, 23 MF; official matching, 7.5 µm)",
        "",
        "| variant | threshold | F1 | precision | recall | TP/FP/FN | AP | oracle F1 (optimistic) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    thr = {mod.name: mod.threshold for mod in models}
    icpr_variants = [
        "bundled CA-RGB",
        "bundled CA-OD",
        "bundled ensemble",
        "CA-RGB",
        "CA-OD",
        "ensemble",
        "plain CA-RGB",
        "paper CA-RGB",
        "CA-RGB round 0",
        "CA-RGB round 1",
        "CA-RGB round 2",
    ]
    for v in icpr_variants:
        if g((v, "icpr", "f1")) is None:
            continue
        t = thr.get(v)
        tpfpfn = f"{int(g((v, 'icpr', 'tp')))}/{int(g((v, 'icpr', 'fp')))}/{int(g((v, 'icpr', 'fn')))}"
        lines.append(
            f"| {v} | {_f(t, '{:.4f}') if t is not None else 'both'} | {_f(g((v, 'icpr', 'f1')))} | "
            f"{_f(g((v, 'icpr', 'precision')))} | {_f(g((v, 'icpr', 'recall')))} | {tpfpfn} | "
            f"{_f(g((v, 'icpr', 'ap')))} | {_f(g((v, 'icpr', 'oracle_f1')))} |"
        )
    lines += [
        "",
        "### Leave-one-scanner-out (MIDOG 2021 crops of the held-out scanner)",
        "",
        "| held-out scanner | crops | metric | LOSO CA-RGB | LOSO CA-OD | LOSO ensemble | plain (ablation) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in SCANNERS:
        d = f"loso {s}"
        n = g(("LOSO CA-RGB", d, "n_crops"))
        for metric, label, fmt in (
            ("sensitivity", "sensitivity (centre MF)", "{:.3f}"),
            ("f1", "F1 (all MF)", "{:.3f}"),
            ("fp_per_mm2", "unmatched det./mm²", "{:.1f}"),
        ):
            lines.append(
                f"| {s} | {_f(n, '{:.0f}')} | {label} | "
                + " | ".join(_f(g((f"LOSO {p}", d, metric)), fmt) for p in ("CA-RGB", "CA-OD", "ensemble"))
                + " | n/a |"
            )
    lines += [
        "",
        "### Unlabelled tissue: detections per mm² at the calibrated threshold",
        "",
        "| variant | MoNuSeg held-out (15) /mm² tissue | /mm² tile | detections "
        "| CCMCT (37) /mm² tissue | /mm² tile | detections |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in [
        "bundled CA-RGB",
        "bundled CA-OD",
        "bundled ensemble",
        "CA-RGB",
        "CA-OD",
        "ensemble",
        "plain CA-RGB",
        "paper CA-RGB",
        "CA-RGB round 0",
        "CA-RGB round 1",
    ]:
        if g((v, "ccmct", "detections")) is None and g((v, "monuseg-heldout", "detections")) is None:
            continue
        cells = []
        for ds in ("monuseg-heldout", "ccmct"):
            cells += [
                _f(g((v, ds, "per_mm2_tissue")), "{:.2f}"),
                _f(g((v, ds, "per_mm2_tile")), "{:.2f}"),
                _f(g((v, ds, "detections")), "{:.0f}"),
            ]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    for ds in ("monuseg-heldout", "ccmct"):
        if g(("bundled CA-RGB", ds, "tile_mm2")) is not None:
            lines.append(
                f"\n{ds}: {g(('bundled CA-RGB', ds, 'tile_mm2')):.3f} mm² of tiles, "
                f"{g(('bundled CA-RGB', ds, 'tissue_mm2')):.3f} mm² of tissue."
            )
    lines += [
        "",
        "### Thresholds (own validation split; bundled: stored in the checkpoint)",
        "",
        "| model | checkpoint | threshold | val F1 (pooled, crops) |",
        "|---|---|---|---|",
    ]
    for mod in models:
        if mod.threshold is not None:
            lines.append(f"| {mod.name} | `{_rel(mod.ckpt)}` | {mod.threshold:.4f} | {_f(mod.val.get('val_f1'))} |")
    return "\n".join(lines) + "\n"


def plot(val: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mitodet.io.atomic import atomic_path

    g = val.get
    fig, ax = plt.subplots(1, 3, figsize=(17, 6))
    # ICPR F1
    vs = [
        v
        for v in [
            "bundled CA-RGB",
            "bundled CA-OD",
            "bundled ensemble",
            "CA-RGB",
            "CA-OD",
            "ensemble",
            "plain CA-RGB",
            "paper CA-RGB",
            "CA-RGB round 0",
            "CA-RGB round 1",
            "CA-RGB round 2",
        ]
        if g((v, "icpr", "f1")) is not None
    ]
    y = np.arange(len(vs))
    ax[0].barh(y - 0.2, [g((v, "icpr", "f1")) for v in vs], 0.4, label="F1 at calibrated threshold", color="C0")
    ax[0].barh(y + 0.2, [g((v, "icpr", "oracle_f1")) for v in vs], 0.4, label="oracle F1 (optimistic)", color="C7")
    ax[0].axvline(0.80, color="C3", ls="--", label="target 0.80")
    ax[0].axvline(0.690, color="k", ls=":", label="paper prelim. test 0.690")
    ax[0].set_yticks(y, vs)
    ax[0].invert_yaxis()
    ax[0].set_xlim(0, 1)
    ax[0].set_title("ICPR 2012 (50 patches, 23 MF)")
    ax[0].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    # LOSO sensitivity
    x = np.arange(len(SCANNERS))
    for k, p in enumerate(("CA-RGB", "CA-OD", "ensemble")):
        ax[1].bar(
            x + (k - 1) * 0.27,
            [g((f"LOSO {p}", f"loso {s}", "sensitivity")) or 0 for s in SCANNERS],
            0.27,
            label=f"LOSO {p}",
            color=f"C{k}",
        )
    ax[1].axhline(0.85, color="C3", ls="--", label="target 0.85")
    ax[1].set_xticks(x, [f"{s}\n(n={int(g(('LOSO CA-RGB', f'loso {s}', 'n_crops')) or 0)})" for s in SCANNERS])
    ax[1].set_ylim(0, 1)
    ax[1].set_title("Leave-one-scanner-out sensitivity (held-out scanner)")
    ax[1].legend(fontsize=7, loc="upper right")
    # detections per mm2 of tissue
    tv = [
        v
        for v in [
            "bundled CA-RGB",
            "bundled CA-OD",
            "bundled ensemble",
            "CA-RGB",
            "CA-OD",
            "ensemble",
            "plain CA-RGB",
            "paper CA-RGB",
            "CA-RGB round 0",
            "CA-RGB round 1",
        ]
        if g((v, "ccmct", "per_mm2_tissue")) is not None or g((v, "monuseg-heldout", "per_mm2_tissue")) is not None
    ]
    y = np.arange(len(tv))
    ax[2].barh(
        y - 0.2,
        [g((v, "monuseg-heldout", "per_mm2_tissue"), np.nan) for v in tv],
        0.4,
        label="MoNuSeg held-out (15)",
        color="C4",
    )
    ax[2].barh(
        y + 0.2, [g((v, "ccmct", "per_mm2_tissue"), np.nan) for v in tv], 0.4, label="CCMCT canine (37)", color="C5"
    )
    ax[2].axvline(2.0, color="C3", ls="--", label="target <= 2 /mm²")
    ax[2].set_yticks(y, tv)
    ax[2].invert_yaxis()
    ax[2].set_xscale("symlog", linthresh=1)
    ax[2].set_title("Detections per mm² of unlabelled tissue")
    ax[2].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


if __name__ == "__main__":
    main()
