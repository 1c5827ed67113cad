"""The model report (issue #11): every number of docs/model-report.md and of the model card,
measured from the checkpoints on the real data, by one command:

    python benchmarks/report_models.py [--gpu runs/gpu] [--cpu runs/cpu] [--threads 2]

What it measures, for the bundled pair (``mitodet/weights``), the leave-one-scanner-out models,
the ablations and the hard-mining rounds (run folders under ``--gpu``):

* validation: sensitivity s on the validation mitoses, false detections per mm² f on the
  validation crops' background and validation tissue, and F1 at 11.1 mitoses/mm² from them
  (``mitodet.evaluate.density``), per source and scanner. Run models are calibrated here on
  their own validation side by that rule (as ``mitodet calibrate`` does); the bundled pair keeps
  the threshold stored in it (chosen by the same rule when it was bundled);
* ICPR 2012 (50 patches, an unseen scanner and lab): official F1 at the threshold, AP, oracle F1;
* leave-one-scanner-out: each LOSO model (trained and calibrated without a scanner) on every
  MIDOG 2021 crop of that scanner: sensitivity on the crop-centre mitosis;
* tissue: detections per mm² of tissue on the 15 held-out MoNuSeg tiles and the 37 CCMCT tiles;
* the held-back MITOS-ATYPIA-14 frames of the fields runs (#17; every mitosis labelled): official
  F1 at the threshold, AP, oracle F1;
* what each change of #17 bought: the CA-RGB models of ``training-state/`` one step after another
  (STEPS) on every test, and the calibration rule, the ensemble rule, capacity and the minutes as
  their benchmarks measured them (``benchmarks/results/*.csv``);
* training histories (validation by detection at each epoch, at the run's best threshold) of the
  ablations (same steps, same validation), the hard-mining rounds and patch vs dense at equal
  CPU minutes (``scripts/compare_modes.sh``): read from their ``metrics.csv``, not re-measured.

The bundled pair gets every test; a LOSO model its validation side and its held-out scanner.
Sections whose run folders are not on this machine (LOSO, ablations, rounds, patch vs dense) are
kept from the previous report, and say so.

Candidates (local maxima >= 0.01) are cached per checkpoint content and dataset in
``runs/report_cache``. Writes ``docs/results/report.csv`` (long format), ``docs/results/report.png``,
``docs/model-report.md`` (from ``benchmarks/model_report.md.in``) and the model card
``mitodet/weights/MODEL_CARD.md`` (from ``benchmarks/model_card.md.in``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_threshold_transfer import weights_key  # noqa: E402
from rich.console import Console  # noqa: E402

from mitodet.data.crops import load_atnorm_crops, load_icpr2012, load_midog21_crops, load_tissue  # noqa: E402
from mitodet.data.fields import load_mitos_atypia14  # noqa: E402
from mitodet.evaluate import average_precision, best_threshold, score  # noqa: E402
from mitodet.evaluate.bootstrap import f1_interval  # noqa: E402
from mitodet.evaluate.density import (  # noqa: E402
    MIDOG_DENSITY,
    best_density_threshold,  # noqa: E402
    density_scores,
)
from mitodet.infer import Detector  # noqa: E402
from mitodet.infer.ensemble import ensemble  # noqa: E402  (mitodet.infer.ensemble is the module)
from mitodet.io.atomic import atomic_path, write_csv, write_text  # noqa: E402
from mitodet.io.image import content_box, read_image  # noqa: E402
from mitodet.model import load_checkpoint  # noqa: E402
from mitodet.schema import MATCH_RADIUS_UM, Detection, decide  # noqa: E402
from mitodet.train.calibrate import PAIR_FLOOR, pair_search  # noqa: E402
from mitodet.train.validate import TISSUE_GROUP, group_of, tissue_area_mm2  # noqa: E402

console = Console(stderr=True)
SCANNERS = ["Hamamatsu XR", "Hamamatsu S360", "Aperio CS2"]
FIELDS_SPLIT = ROOT / "training-state" / "fields-ca-rgb" / "split.json"  # the frames #17 holds back
FLOOR = 0.01  # candidates cached down to this probability (= the calibration floor)
AP_HALF_UM = 11.25  # the official AP box half-side in µm
CACHED_ONLY = False


class NotCached(Exception):
    """Candidates not in the cache (with --cached-only)."""


# ----------------------------------------------------------------------------- data
@dataclass
class Item:
    """One image: id, file, spacing, labelled mitoses (px), report group, lazy pixels (black bands cut)."""

    id: str
    path: Path
    mpp: float
    points: list = field(default_factory=list)
    group: str = ""
    centre: tuple | None = None
    _px: np.ndarray | None = None
    _off: tuple = (0, 0)

    def pixels(self) -> np.ndarray:
        if self._px is None:
            px = read_image(self.path, self.mpp)[0]
            y0, y1, x0, x1 = content_box(px)
            self._px, self._off = np.ascontiguousarray(px[y0:y1, x0:x1]), (x0, y0)
        return self._px

    def truth_px(self) -> list:
        self.pixels()
        return [(x - self._off[0], y - self._off[1]) for x, y in self.points]

    def area_mm2(self) -> float:
        if self.group == "atnorm_md":  # labelled at the centre only: sensitivity, no false detections
            return 0.0
        px = self.pixels()
        if self.group == TISSUE_GROUP or self.group in ("monuseg-heldout", "ccmct"):
            return tissue_area_mm2(px, self.mpp)
        return px.shape[0] * px.shape[1] * (self.mpp / 1000.0) ** 2


class Data:
    """The labelled records and tiles of ../shared/data, by id."""

    def __init__(self, root: Path):
        self.root = root
        self.records = {
            r.id: r for r in [*load_midog21_crops(root / "midog21_crops"), *load_atnorm_crops(root / "atnorm_md")]
        }
        self.centre = {}
        with open(root / "midog21_crops" / "labels_in_crops.csv", newline="") as fh:
            for r in csv.DictReader(fh):
                if r.get("is_center") == "1":
                    self.centre[Path(r["file"]).stem] = (float(r["x"]), float(r["y"]))

    def item(self, rid: str) -> Item:
        r = self.records[rid]
        return Item(
            r.id,
            r.path,
            r.mpp,
            [(p.x, p.y) for p in r.mitoses],
            group_of(r.domain),
            self.centre.get(r.id, (64.0, 64.0)),
        )

    def validation(self, ids: list[str], tissue: list[str]) -> list[Item]:
        items = [self.item(i) for i in ids if i in self.records]
        for name in tissue:
            p = self.root / "tissue" / "monuseg" / (Path(name).stem + ".tif")
            items.append(Item(f"tissue:{p.name}", p, read_image(p)[1] or 0.25, [], TISSUE_GROUP))
        return items

    def scanner_crops(self, scanner: str) -> list[Item]:
        return [self.item(i) for i, r in self.records.items() if r.domain.get("scanner") == scanner]

    def icpr(self) -> list[Item]:
        return [
            Item(r.id, r.path, r.mpp, [(p.x, p.y) for p in r.points], "icpr")
            for r in load_icpr2012(self.root / "icpr2012_patches").images
        ]

    def held_back_frames(self) -> list[Item]:
        """The MITOS-ATYPIA-14 frames the fields runs hold back (every mitosis labelled): [] without
        the frames or the split."""
        if not FIELDS_SPLIT.is_file() or not (self.root / "mitos_atypia14").is_dir():
            return []
        val = set(json.loads(FIELDS_SPLIT.read_text())["val"])
        return [
            Item(r.id, r.path, r.mpp, [(p.x, p.y) for p in r.mitoses], "fields")
            for r in load_mitos_atypia14(self.root / "mitos_atypia14").images
            if r.id in val
        ]

    def tissue_test(self, trained_on: set[str]) -> dict[str, list[Item]]:
        """Held-out MoNuSeg tiles (never in any training or validation list) and all CCMCT tiles."""
        mon = [r for r in load_tissue(self.root / "tissue", "monuseg").images if r.id not in trained_on]
        cc = load_tissue(self.root / "tissue", "ccmct").images
        return {
            "monuseg-heldout": [Item(r.id, r.path, r.mpp, [], "monuseg-heldout") for r in mon],
            "ccmct": [Item(r.id, r.path, r.mpp, [], "ccmct") for r in cc],
        }


# ----------------------------------------------------------------------------- models
class Model:
    """A checkpoint and the validation side that calibrates it."""

    def __init__(self, name: str, ckpt: Path, val_ids: list[str], val_tissue: list[str], keep_threshold: bool):
        self.name, self.ckpt = name, ckpt
        self.val_ids, self.val_tissue, self.keep_threshold = val_ids, val_tissue, keep_threshold
        _, self.meta = load_checkpoint(ckpt)
        self.threshold: float = float(self.meta.get("threshold", 0.5))
        # of the weights, not the file: a checkpoint whose threshold alone moved reuses its candidates
        self.digest = hashlib.sha1(weights_key(ckpt)).hexdigest()[:12]
        self._det = None

    @classmethod
    def from_run(cls, name: str, run: Path) -> Model:
        split = json.loads((run / "split.json").read_text())
        cfg = (run / "config.yaml").read_text()
        import yaml

        tissue = yaml.safe_load(cfg)["val"]["tissue"]
        return cls(name, run / "best.pt", split["val"], tissue, keep_threshold=False)

    @classmethod
    def bundled(cls, name: str, ckpt: Path) -> Model:
        v = load_checkpoint(ckpt)[1].get("validation") or {}
        return cls(name, ckpt, v.get("ids", []), v.get("tissue", []), keep_threshold=True)

    def detector(self, threads: int) -> Detector:
        if self._det is None:
            self._det = Detector.from_checkpoint(self.ckpt, threads=threads, backend="auto")
        return self._det


def candidates(model: Model, dataset: str, items: list[Item], cache: Path, threads: int) -> dict[str, np.ndarray]:
    """id -> (n, 3) candidate (x, y, probability) in the pixels of ``Item.pixels()``, probability >= FLOOR."""
    digest = hashlib.sha1("\n".join(it.id for it in items).encode()).hexdigest()[:10]
    path = cache / f"{model.digest}__{dataset}__{digest}.npz"
    if path.is_file():
        z = np.load(path)
        return {it.id: z[f"c_{i}"] for i, it in enumerate(items)}
    if CACHED_ONLY:
        raise NotCached(f"{model.name} / {dataset}")
    det = model.detector(threads)
    console.print(f"candidates: {model.name} on {dataset} ({len(items)} images)")
    out = {}
    for it in items:
        c = det.candidates(it.pixels(), it.mpp, floor=FLOOR)
        out[it.id] = np.array([(d.x, d.y, d.probability) for d in c], dtype=np.float64).reshape(-1, 3)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **{f"c_{i}": out[it.id] for i, it in enumerate(items)})
    return out


def areas(items: list[Item], cache: Path) -> dict[str, float]:
    tag = hashlib.sha1("\n".join(it.id for it in items).encode()).hexdigest()[:10]
    path = cache / f"area2__{tag}.json"  # 2: AtNorM-MD crops have no area
    if path.is_file():
        return json.loads(path.read_text())
    out = {it.id: it.area_mm2() for it in items}
    write_text(path, json.dumps(out))
    return out


# ----------------------------------------------------------------------------- scoring
def in_um(items: list[Item], cands: dict, threshold: float | None = None) -> tuple[dict, dict]:
    truth = {it.id: [(x * it.mpp, y * it.mpp) for x, y in it.truth_px()] for it in items}
    pred = {
        it.id: [(x * it.mpp, y * it.mpp, p) for x, y, p in cands[it.id] if threshold is None or p >= threshold]
        for it in items
    }
    return truth, pred


def agreement(
    items: list[Item], ca: dict, cb: dict, ta: float, tb: float, every: bool = False
) -> dict[str, np.ndarray]:
    """The agreement ensemble's mitotic figures per image (``mitodet.infer.ensemble``), probability = mean;
    ``every``: all its outputs (pairs at their mean, singles at half), the ranking AP and the oracle F1 use."""
    out = {}
    for it in items:  # candidates at the detector's floor, as in detection
        da = [Detection(x, y, p, decide(p, ta)) for x, y, p in ca[it.id] if p >= PAIR_FLOOR]
        db = [Detection(x, y, p, decide(p, tb)) for x, y, p in cb[it.id] if p >= PAIR_FLOOR]
        e = ensemble(da, db, MATCH_RADIUS_UM / it.mpp)
        out[it.id] = np.array([(d.x, d.y, d.probability) for d in e if every or d.is_mitosis]).reshape(-1, 3)
    return out


def density_at(items: list[Item], cands: dict, area: dict, t: float) -> dict:
    truth, pred = in_um(items, cands)
    out = {"all": density_scores(truth, pred, area, MATCH_RADIUS_UM, t, MIDOG_DENSITY)}
    for g in sorted({it.group for it in items}):
        keys = {it.id for it in items if it.group == g}
        out[g] = density_scores(truth, pred, {k: area[k] for k in keys}, MATCH_RADIUS_UM, t, MIDOG_DENSITY)
    return out


def icpr_scores(items: list[Item], cands: dict, t: float, everything: dict | None = None) -> dict:
    truth, pred = in_um(items, cands, t)
    s = score(truth, pred, MATCH_RADIUS_UM)
    lo, hi = f1_interval([(v.true_positives, v.false_positives, v.false_negatives) for v in s["per_image"].values()])
    truth, allp = in_um(items, everything if everything is not None else cands)
    ap = average_precision([truth[k] for k in truth], [allp[k] for k in truth], half=AP_HALF_UM)
    oracle = best_threshold(truth, allp, MATCH_RADIUS_UM)
    return {
        "f1": s["f1"],
        "f1_lo": lo,  # 95 % bootstrap interval over the images
        "f1_hi": hi,
        "precision": s["precision"],
        "recall": s["recall"],
        "tp": s["tp"],
        "fp": s["fp"],
        "fn": s["fn"],
        "ap": ap,
        "oracle_f1": oracle["f1"],
    }


def centre_sensitivity(items: list[Item], cands: dict, t: float) -> float:
    found = 0
    for it in items:
        c = cands[it.id]
        c = c[c[:, 2] >= t]
        it.pixels()
        cx, cy = it.centre[0] - it._off[0], it.centre[1] - it._off[1]
        found += bool(len(c) and (np.hypot(c[:, 0] - cx, c[:, 1] - cy) * it.mpp <= MATCH_RADIUS_UM).any())
    return found / max(1, len(items))


def per_mm2(items: list[Item], cands: dict, area: dict, t: float) -> tuple[float, int]:
    n = sum(int((cands[it.id][:, 2] >= t).sum()) for it in items)
    return n / sum(area[it.id] for it in items), n


# ----------------------------------------------------------------------------- the report
class Report:
    def __init__(self, args):
        self.args, self.data = args, Data(args.data)
        self.cache = args.cache
        self.rows: list[tuple[str, str, str, float]] = []  # (variant, dataset, metric, value)
        self.cands: dict[tuple[str, str], dict] = {}
        self.tissue: dict[str, list[Item]] = {}
        self.fields: list[Item] = []

    def record(self, variant: str, dataset: str, metric: str, value) -> None:
        if value is not None:
            self.rows.append((variant, dataset, metric, float(value)))

    def cand(self, model: Model, dataset: str, items: list[Item]) -> dict:
        key = (model.digest, dataset)
        if key not in self.cands:
            self.cands[key] = candidates(model, dataset, items, self.cache, self.args.threads)
        return self.cands[key]

    def calibrate(self, model: Model) -> tuple[list[Item], dict, dict]:
        """Validation items, candidates and areas of a model; sets its threshold (density rule)."""
        items = self.data.validation(model.val_ids, model.val_tissue)
        c = self.cand(model, f"val-{hashlib.sha1(''.join(model.val_ids).encode()).hexdigest()[:8]}", items)
        area = areas(items, self.cache)
        if not model.keep_threshold:
            truth, pred = in_um(items, c)
            model.threshold = best_density_threshold(truth, pred, area, MATCH_RADIUS_UM, MIDOG_DENSITY)["threshold"]
        return items, c, area

    def evaluate(self, name: str, models: list[Model], loso_scanner: str | None = None) -> dict:
        """Every test of one model, or of a pair and its agreement ensemble (name, name + " ensemble");
        LOSO models: validation and their held-out scanner only."""
        out = {}
        vals = [self.calibrate(m) for m in models]
        variants = [(m.name, m) for m in models] + ([(f"{name} ensemble", None)] if len(models) == 2 else [])
        tests: dict[str, list[Item]] = {}
        if loso_scanner:
            tests[f"loso {loso_scanner}"] = self.data.scanner_crops(loso_scanner)
        else:
            tests = {"icpr": self.data.icpr(), **self.tissue}
            if self.fields:
                tests["fields"] = self.fields
        for vname, m in variants:
            res: dict = {}
            if m is not None:
                items, c, area = vals[models.index(m)]
                res["threshold"] = m.threshold
                res["val"] = density_at(items, c, area, m.threshold)
            else:  # agreement of the pair, on the first model's validation side
                items, ca, area = vals[0]
                cb = self.cand(
                    models[1], f"val-{hashlib.sha1(''.join(models[0].val_ids).encode()).hexdigest()[:8]}", items
                )
                if not models[0].keep_threshold:  # run models: thresholds for the pair (`calibrate --pair`)
                    truth, pa = in_um(items, ca)
                    _, pb = in_um(items, cb)
                    found = pair_search(truth, pa, pb, area)
                    pair_t = (found["threshold_a"], found["threshold_b"])
                else:
                    pair_t = (models[0].threshold, models[1].threshold)
                res["thresholds"] = pair_t
                res["val"] = density_at(items, agreement(items, ca, cb, *pair_t), area, 0.0)
            for ds, items_t in tests.items():
                if m is not None:
                    c, t = self.cand(m, ds, items_t), m.threshold
                    everything = None
                else:
                    ca, cb = self.cand(models[0], ds, items_t), self.cand(models[1], ds, items_t)
                    c, t = agreement(items_t, ca, cb, *res["thresholds"]), 0.0
                    everything = agreement(items_t, ca, cb, *res["thresholds"], every=True)
                if ds in ("icpr", "fields"):
                    res[ds] = icpr_scores(items_t, c, t, everything)
                    res[ds] |= {"images": len(items_t), "mitoses": sum(len(it.points) for it in items_t)}
                elif ds.startswith("loso"):
                    res["loso_sensitivity"] = centre_sensitivity(items_t, c, t)
                    res["loso_n"] = len(items_t)
                else:
                    res[ds] = per_mm2(items_t, c, areas(items_t, self.cache), t)
            out[vname] = res
            self._record(vname, res)
        return out

    def _record(self, v: str, res: dict) -> None:
        self.record(v, "validation", "threshold", res.get("threshold"))
        for g, sc in res["val"].items():
            for k in ("sensitivity", "fp_per_mm2", "f1_density"):
                self.record(v, f"validation {g}", k, sc[k])
        for ds in ("icpr", "fields"):
            for k, val in res.get(ds, {}).items():
                self.record(v, ds, k, val)
        self.record(v, "loso", "sensitivity", res.get("loso_sensitivity"))
        for ds in ("monuseg-heldout", "ccmct"):
            if ds in res:
                self.record(v, ds, "per_mm2_tissue", res[ds][0])
                self.record(v, ds, "detections", res[ds][1])


def _fmt(v, f="{:.3f}") -> str:
    return "n/a" if v is None or v != v else f.format(v)


def history(run: Path) -> list[dict]:
    if not (run / "metrics.csv").is_file():
        return []
    return list(csv.DictReader(open(run / "metrics.csv", newline="")))


def best_row(rows: list[dict]) -> dict:
    """The epoch with the best validation F1 at density ({} when none was validated by detection)."""
    return max((r for r in rows if r.get("val_f1_density")), key=lambda r: float(r["val_f1_density"]), default={})


def _num(row: dict, key: str, f: str = "{:.3f}") -> str:
    return _fmt(float(row[key]) if row.get(key) not in (None, "") else None, f)


def at_epoch(rows: list[dict], epoch: int) -> dict:
    return next((r for r in rows if int(r["epoch"]) == epoch), {})


PREVIOUS_COMMIT = "add00ae"  # the first bundled pair (issue #7): patch mode, MIDOG 2021 crops only


def previous_pair(cache: Path, bundled: Model) -> list[Model]:
    """The first bundled pair, from the git history, measured on the current pair's validation side
    (kept thresholds). [] without git. Its training split of the MIDOG 2021 crops was another one:
    some of these validation crops were its training crops, so its MIDOG 2021 numbers flatter it;
    AtNorM-MD, ICPR and the tissue tiles it never saw."""
    import subprocess

    out = []
    for proto in ("ca-rgb", "ca-od"):
        path = cache / "previous" / f"default-{proto}.pt"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            r = subprocess.run(
                ["git", "show", f"{PREVIOUS_COMMIT}:mitodet/weights/default-{proto}.pt"], cwd=ROOT, capture_output=True
            )
            if r.returncode:
                return []
            path.write_bytes(r.stdout)
        out.append(Model(f"previous {proto.upper()}", path, bundled.val_ids, bundled.val_tissue, keep_threshold=True))
    return out


def round_runs(gpu: Path) -> list[str]:
    """The GPU reference runs and their CPU hard-mining rounds (``<run>/round1/round1/...``).
    ``ca-rgb-ohem`` is a copy of ``ca-rgb`` that its rounds with online hard negatives continue."""
    out = []
    for base in ("ca-rgb", "ca-rgb-ohem", "ca-od"):
        d, rel = gpu / base, base
        while (d / "best.pt").is_file():
            if rel != "ca-rgb-ohem":
                out.append(rel)
            d, rel = d / "round1", rel + "/round1"
    return out


def online_fraction(run: Path) -> str:
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    f = (cfg.get("dense") or {}).get("hard_negative_fraction", 1.0)
    return "-" if f is None or float(f) >= 1 else f"{float(f):g}"


def keep_loso(out: Path, rep: Report) -> dict:
    """The leave-one-scanner-out results of the previous report (its report.json and report.csv rows),
    for a machine without the LOSO runs; {} when there is none."""
    if not (out / "report.json").is_file():
        return {}
    kept = {k: v for k, v in json.loads((out / "report.json").read_text()).items() if k.startswith("loso ")}
    for v in kept.values():
        v["_kept"] = True  # render says so
    if kept and (out / "report.csv").is_file():
        with open(out / "report.csv", newline="") as fh:
            rep.rows += [
                (r["variant"], r["dataset"], r["metric"], float(r["value"]))
                for r in csv.DictReader(fh)
                if r["variant"].startswith("LOSO ")
            ]
    return kept


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu", type=Path, default=ROOT / "runs" / "gpu")
    ap.add_argument("--cpu", type=Path, default=ROOT / "runs" / "cpu")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--weights", type=Path, default=ROOT / "mitodet" / "weights")
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "report_cache")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cached-only", action="store_true", help="use cached candidates only (missing parts fail)")
    args = ap.parse_args(argv)
    global CACHED_ONLY
    CACHED_ONLY = args.cached_only
    import torch

    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    rep = Report(args)
    import yaml

    trained_on = set()
    for c in (ROOT / "configs" / "dense-ca-rgb.yaml",):
        cfg = yaml.safe_load(c.read_text())
        trained_on |= {Path(p).stem for p in cfg["data"]["tissue"] + cfg["val"]["tissue"]}
    rep.tissue = rep.data.tissue_test(trained_on)
    rep.fields = rep.data.held_back_frames()
    g = args.gpu
    results: dict[str, dict] = {}
    pair = [
        Model.bundled("bundled CA-RGB", args.weights / "default-ca-rgb.pt"),
        Model.bundled("bundled CA-OD", args.weights / "default-ca-od.pt"),
    ]
    results["bundled"] = rep.evaluate("bundled", pair)
    prev = previous_pair(args.cache, pair[0])
    if prev:
        results["previous"] = rep.evaluate("previous", prev)
    for s in SCANNERS:
        tag = s.lower().replace(" ", "-")
        runs = [g / f"loso-{tag}-ca-rgb", g / f"loso-{tag}-ca-od"]
        if all((r / "best.pt").is_file() for r in runs):
            ms = [Model.from_run(f"LOSO {s} CA-RGB", runs[0]), Model.from_run(f"LOSO {s} CA-OD", runs[1])]
            results[f"loso {s}"] = rep.evaluate(f"LOSO {s}", ms, loso_scanner=s)
    steps = step_models()
    for n, _, m in steps:
        results[n] = rep.evaluate(n, [m])
    ablations = {
        "abl-no-resample": "no resampling to 0.25 µm/px (native pixels)",
        "abl-no-atnorm": "no AtNorM-MD crops",
        "abl-mild-colour": "mild colour augmentation, no stain / blur / sharpen / resampling jitter",
        "abl-patch": "the paper's patch mode (78 px patches, batches of 128)",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    if not any(k.startswith("loso ") for k in results):  # the LOSO runs are not here: keep their results
        results |= keep_loso(args.out, rep)
    write_csv(args.out / "report.csv", ["variant", "dataset", "metric", "value"], rep.rows)
    write_text(args.out / "report.json", json.dumps(results, indent=1, default=float))
    old = (args.out / "report_tables.md").read_text() if (args.out / "report_tables.md").is_file() else ""
    tables = render(results, ablations, g, args.cpu, pair, old, changes_section(results, steps))
    write_text(args.out / "report_tables.md", tables)
    template = (ROOT / "benchmarks" / "model_report.md.in").read_text()
    atypical = ROOT / "docs" / "results" / "atypical-card.md"  # benchmarks/bench_atypical.py writes it
    section = (
        "<!-- atypical: benchmarks/bench_atypical.py -->\n"
        + atypical.read_text().replace("../../docs/results/", "results/")
        + "<!-- /atypical -->\n"
        if atypical.is_file()
        else ""
    )
    report = template.replace("{{tables}}", tables).replace("{{atypical}}\n", section)  # prose is in the template
    write_text(ROOT / "docs" / "model-report.md", report)
    card = (ROOT / "benchmarks" / "model_card.md.in").read_text()
    atypical = ROOT / "docs" / "results" / "atypical-card.md"  # benchmarks/bench_atypical.py writes it
    block = (
        f"<!-- atypical: benchmarks/bench_atypical.py -->\n{atypical.read_text()}<!-- /atypical -->\n"
        if atypical.is_file()
        else ""
    )
    card = card.replace("{{card_tables}}", card_tables(results, pair)).replace("{{atypical}}\n", block)
    write_text(args.weights / "MODEL_CARD.md", card)
    plot(results, args.out / "report.png")
    print(tables)


# ----------------------------------------------------------------------------- what each change bought
STATE = ROOT / "training-state"
RESULTS = ROOT / "benchmarks" / "results"
# the CA-RGB models of #17, one change after another, each measured by every test of the report
STEPS = [
    (
        "bundled CA-RGB, more minutes",
        "ca-rgb-more",
        "instead: the bundled model's own recipe resumed for 60 more minutes on one CPU thread (#17 item 5; "
        "best.pt by F1 at density on its validation side)",
    ),
    ("fields CA-RGB", "fields-ca-rgb", "+ whole labelled fields as data (#17 item 1), fields recipe on one CPU thread"),
    ("fields CA-RGB, mined", "fields-ca-rgb/round1", "+ a hard-negative round on its own false detections"),
    (
        "fields CA-RGB, light",
        "fields-light-ca-rgb",
        "instead of fields CA-RGB: the frames a third of the negative windows' share (0.1) and not oversampled",
    ),
]


def step_models() -> list[tuple[str, str, Model]]:
    """(name, what changed, model at its stored threshold) of the STEPS whose best.pt is here."""
    out = []
    for name, rel, what in STEPS:
        run = STATE / rel
        if (run / "best.pt").is_file() and not (run / "training.lock").exists():  # finished runs only
            m = Model.from_run(name, run)
            m.keep_threshold = True  # the threshold its own validation chose (val.select)
            out.append((name, what, m))
    return out


RESUMED_FROM = {"ca-rgb-more": "ca-rgb"}  # steps that resumed a committed state: their minutes start there


def step_minutes(m: Model) -> float | None:
    """CPU minutes of a step to its best.pt: those of its run, less those of the state it resumed."""
    cpu = (m.meta.get("training_minutes") or {}).get("cpu")
    base = RESUMED_FROM.get(m.ckpt.parent.name)
    if cpu is None or base is None:
        return cpu
    from mitodet.train.rundir import load_state

    return cpu - float((load_state(STATE / base).get("minutes") or {}).get("cpu", 0.0))


def _csv(name: str) -> list[dict]:
    path = RESULTS / name
    return list(csv.DictReader(open(path, newline=""))) if path.is_file() else []


def changes_section(results: dict, steps: list[tuple[str, str, Model]]) -> list[str]:
    """The ablation table of #17 item 7: the models of each step on the same tests, then what the
    benchmarks measured for the calibration rule, the ensemble rule, capacity and the minutes."""
    L = [
        "",
        "### What each change bought (#17)",
        "",
        "CA-RGB models, one change after another, on the tests above at the threshold stored in each "
        "(chosen on its own validation side); minutes are CPU minutes of that step.",
        "",
        "| model | change | minutes | F1 held-back frames | F1 ICPR 2012 | F1 at density (val) | "
        "AtNorM-MD s | det./mm² MoNuSeg |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [("bundled CA-RGB", "start: the bundled model", results["bundled"]["bundled CA-RGB"], None)]
    rows += [(n, what, results[n][n], m) for n, what, m in steps]
    for n, what, r, m in rows:
        minutes = "-" if m is None else _fmt(step_minutes(m), "{:.0f}")
        L.append(
            f"| {n} | {what} | {minutes} | {_fmt(r.get('fields', {}).get('f1'))} | {_fmt(r['icpr']['f1'])} | "
            f"{_fmt(r['val']['all']['f1_density'])} | {_fmt(r['val'].get('atnorm_md', {}).get('sensitivity'))} | "
            f"{_fmt(r['monuseg-heldout'][0], '{:.1f}')} |"
        )
    L += ["", "Read from the benchmarks (their tables are in the README):", ""]
    L += ["| change | benchmark | without | with |", "|---|---|---|---|"]
    tt = {(r["model"], r["rule"]): r for r in _csv("bench_threshold_transfer.csv")}
    a, b = tt.get(("default-ca-rgb", "stored in the checkpoint")), tt.get(("default-ca-rgb", "best on ICPR 2012"))
    own = tt.get(("default-ca-rgb", "best on MITOS-ATYPIA-14"))
    if a and b and own:
        L.append(
            "| calibration on tissue of one lab instead of the stored thresholds (CA-RGB; stored: chosen on crops + "
            "tissue, then shifted for whole fields, `scripts/recalibrate_bundled.py`) | bench_threshold_transfer: "
            "mean F1 lost on the sources not calibrated on | "
            f"{a['cost']} (stored) | {b['cost']} (ICPR 2012), {own['cost']} (MITOS-ATYPIA-14) |"
        )
    er = {r["rule"]: r for r in _csv("bench_ensemble_rule.csv")}
    if "agreement (paper)" in er:
        ag = er["agreement (paper)"]
        others = ", ".join(
            f"{k} {er[k]['fields_f1_2fold']} / {er[k]['midog21_crops_fp_per_mm2']}"
            for k in ("larger probability", "mean probability", "A alone")
            if k in er
        )
        L.append(
            "| the ensemble rule (fields pair) | bench_ensemble_rule: fields F1 (2-fold) / false det. per mm² "
            f"of crops | agreement {ag['fields_f1_2fold']} / {ag['midog21_crops_fp_per_mm2']} | {others} |"
        )
    cap = {(r["model"], r["compared_at"]): r for r in _csv("bench_capacity.csv")}
    f, m = cap.get(("fast", "equal minutes (28)")), cap.get(("medium", "equal minutes (28)"))
    if f and m:
        L.append(
            "| capacity: `medium` (99k parameters) for `fast` (44k), equal minutes | bench_capacity: fields F1 / "
            f"F1 at density; detection cost | {f['val_f1_fields']} / {f['val_f1_density']}; 1x | "
            f"{m['val_f1_fields']} / {m['val_f1_density']}; {m['cost_vs_fast']}x |"
        )
    h = history(STATE / "fields-ca-rgb")
    if h:
        done = [r for r in h if r.get("val_f1_mean")]
        minutes = lambda r: sum(float(x["seconds"]) for x in h if int(x["epoch"]) <= int(r["epoch"])) / 60  # noqa: E731
        first, best = done[0], max(done, key=lambda r: float(r["val_f1_mean"]))
        L.append(
            "| the extra minutes (fields CA-RGB) | training history: fields F1 / F1 at density | "
            f"epoch {first['epoch']} ({minutes(first):.0f} min): {_num(first, 'val_f1_fields')} / "
            f"{_num(first, 'val_f1_density')} | best, epoch {best['epoch']} ({minutes(best):.0f} min): "
            f"{_num(best, 'val_f1_fields')} / {_num(best, 'val_f1_density')}; {len(h)} epochs "
            f"({minutes(h[-1]):.0f} min) in all |"
        )
    return L


# ----------------------------------------------------------------------------- tables
TARGETS = {"loso": 0.80, "tissue": 5.0, "icpr": 0.75, "atnorm": 0.75, "f1_density": 0.70, "fields": 0.75}


KEPT = (
    "*Kept from the previous report: the run folders it reads (`--gpu`, `--cpu`) are not on the "
    "machine that regenerated this one.*"
)


def kept_section(old: str, heading: str) -> list[str]:
    """The section of a previous report_tables.md under ``heading`` (up to the next ``###``), with
    the KEPT note; [] when the old tables lack it."""
    lines = old.splitlines()
    start = next((i for i, t in enumerate(lines) if t.startswith(heading)), None)
    if start is None:
        return []
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("### ")), len(lines))
    body = "\n".join(t for t in lines[start + 1 : end] if t != KEPT).strip("\n")
    return ["", lines[start], "", KEPT, "", *body.splitlines()]


def _score_table(heading: str, note: str, rows: list[tuple[str, dict]]) -> list[str]:
    cols = "| model | F1 | 95 % interval | precision | recall | TP/FP/FN | AP | oracle F1 |"
    return ["", heading, "", note, "", cols, "|---" * 8 + "|", *(_score_row(n, i) for n, i in rows)]


def _interval(lo: float | None, hi: float | None) -> str:
    """A bootstrap interval over images (``mitodet.evaluate.bootstrap``), or n/a."""
    return "n/a" if lo is None or hi is None or lo != lo else f"{lo:.3f}-{hi:.3f}"


def _score_row(name: str, i: dict) -> str:
    return (
        f"| {name} | {_fmt(i['f1'])} | {_interval(i.get('f1_lo'), i.get('f1_hi'))} | {_fmt(i['precision'])} | "
        f"{_fmt(i['recall'])} | {i['tp']}/{i['fp']}/{i['fn']} | {_fmt(i['ap'])} | {_fmt(i['oracle_f1'])} |"
    )


def render(
    results: dict, ablations: dict, gpu: Path, cpu: Path, pair: list[Model], old: str = "", changes: list[str] = ()
) -> str:
    b = results["bundled"]
    names = [m.name for m in pair] + ["bundled ensemble"]
    L: list[str] = []
    L += [
        "### Against the targets (bundled pair and its agreement ensemble)",
        "",
        "| target | " + " | ".join(names) + " |",
        "|---|---|---|---|",
    ]

    def row(label, fn):
        L.append(f"| {label} | " + " | ".join(fn(b[n]) for n in names) + " |")

    row(
        f"F1 at {MIDOG_DENSITY} mitoses/mm², validation (>= {TARGETS['f1_density']})",
        lambda r: _fmt(r["val"]["all"]["f1_density"]),
    )
    if "fields" in b[names[0]]:
        row(
            f"official F1, {b[names[0]]['fields']['images']} held-back MITOS-ATYPIA-14 frames (>= {TARGETS['fields']})",
            lambda r: _fmt(r["fields"]["f1"]),
        )
    row(f"ICPR 2012 official F1 (>= {TARGETS['icpr']})", lambda r: _fmt(r["icpr"]["f1"]))
    row(
        f"AtNorM-MD validation sensitivity (>= {TARGETS['atnorm']}; false det. / mm² validation tissue <= 3)",
        lambda r: (
            f"{_fmt(r['val'].get('atnorm_md', {}).get('sensitivity'))} "
            f"({_fmt(r['val'].get(TISSUE_GROUP, {}).get('fp_per_mm2'), '{:.1f}')})"
        ),
    )
    row(
        f"detections / mm² tissue, held-out MoNuSeg (<= {TARGETS['tissue']:g})",
        lambda r: _fmt(r["monuseg-heldout"][0], "{:.1f}"),
    )
    row(f"detections / mm² tissue, CCMCT (<= {TARGETS['tissue']:g})", lambda r: _fmt(r["ccmct"][0], "{:.1f}"))
    loso = {k[5:]: v for k, v in results.items() if k.startswith("loso ")}
    if loso:
        L.append(
            f"| leave-one-scanner-out sensitivity (>= {TARGETS['loso']}), LOSO models | "
            + " | ".join(
                ", ".join(f"{s.split()[-1]} {_fmt(v[f'LOSO {s} {p}']['loso_sensitivity'])}" for s, v in loso.items())
                for p in ("CA-RGB", "CA-OD", "ensemble")
            )
            + " |"
        )
    if "previous" in results:
        p = results["previous"]
        L += [
            "",
            f"### Against the first bundled pair (issue #7, commit {PREVIOUS_COMMIT})",
            "",
            "Both ensembles on the same tests. The first pair's MIDOG 2021 validation numbers flatter it: "
            "its training split was another one, so some of these crops were its training crops; "
            "AtNorM-MD, ICPR 2012 and the tissue tiles neither pair trained on.",
            "",
            "| test | first pair (ensemble) | this pair (ensemble) |",
            "|---|---|---|",
        ]
        pe, be = p["previous ensemble"], b["bundled ensemble"]
        for label, fn in (
            (f"F1 at {MIDOG_DENSITY} mitoses/mm², validation", lambda r: _fmt(r["val"]["all"]["f1_density"])),
            (
                "sensitivity / false det. per mm², validation",
                lambda r: f"{_fmt(r['val']['all']['sensitivity'])} / {_fmt(r['val']['all']['fp_per_mm2'], '{:.1f}')}",
            ),
            (
                "AtNorM-MD validation sensitivity (7 tumour types, unseen by the first pair)",
                lambda r: _fmt(r["val"].get("atnorm_md", {}).get("sensitivity")),
            ),
            (
                "ICPR 2012 official F1 (precision / recall)",
                lambda r: f"{_fmt(r['icpr']['f1'])} ({_fmt(r['icpr']['precision'])} / {_fmt(r['icpr']['recall'])})",
            ),
            (
                "official F1, held-back MITOS-ATYPIA-14 frames (unseen by both pairs)",
                lambda r: _fmt(r.get("fields", {}).get("f1")),
            ),
            ("detections / mm², held-out MoNuSeg", lambda r: _fmt(r["monuseg-heldout"][0], "{:.1f}")),
            ("detections / mm², CCMCT", lambda r: _fmt(r["ccmct"][0], "{:.1f}")),
        ):
            L.append(f"| {label} | {fn(pe)} | {fn(be)} |")
    L += [
        "",
        f"### Validation: s, f and F1 at {MIDOG_DENSITY} mitoses/mm² per source and scanner",
        "",
        "Thresholds: "
        + ", ".join(f"{n} {_fmt(b[n].get('threshold'), '{:.4f}')}" for n in names[:2])
        + " (chosen together for their ensemble by `mitodet calibrate --pair`, then both moved by one logit "
        "shift for the best official F1 on fully labelled whole fields: "
        "`scripts/recalibrate_bundled.py`); the ensemble keeps what both "
        "call a mitosis. AtNorM-MD crops count for s only (their other cells are unlabelled).",
        "",
        "| group | " + " | ".join(f"{n} s | f /mm² | F1" for n in names) + " |",
        "|---" * (1 + 3 * len(names)) + "|",
    ]
    groups = list(b[names[0]]["val"])
    for grp in groups:
        cells = []
        for n in names:
            sc = b[n]["val"].get(grp, {})
            cells += [_fmt(sc.get("sensitivity")), _fmt(sc.get("fp_per_mm2"), "{:.1f}"), _fmt(sc.get("f1_density"))]
        L.append(f"| {grp} | " + " | ".join(cells) + " |")
    L += _score_table(
        "### ICPR 2012 (50 patches, 23 MF; official matching, 7.5 µm)",
        "AP and oracle F1 (the best threshold for these images themselves) rank the ensemble's outputs by "
        "their mean probability (an unpaired candidate at half its own). The 95 % interval of F1 resamples "
        "the images (bootstrap, `mitodet.evaluate.bootstrap`; `mitodet evaluate` prints the same).",
        [(n, b[n]["icpr"]) for n in names],
    )
    if "fields" in b[names[0]]:
        fb = b[names[0]]["fields"]
        L += _score_table(
            f"### Held-back MITOS-ATYPIA-14 frames ({fb['images']} whole x40 frames, {fb['mitoses']} MF; "
            "official matching, 7.5 µm)",
            "The frames the fields runs (#17) hold back for validation, split by frame; every mitosis is "
            "labelled, so every other detection is a false one. The stored thresholds; AP and oracle "
            "F1 as for ICPR 2012.",
            [(n, b[n]["fields"]) for n in names],
        )
    if loso:
        L += [
            "",
            "### Leave-one-scanner-out (each model never saw the scanner, nor was calibrated on it)",
            "",
            *([KEPT, ""] if any(v.get("_kept") for v in loso.values()) else []),
            "Sensitivity on the crop-centre mitosis of every crop of the held-out scanner; thresholds by F1 at "
            "density on each model's own validation side (the ensemble's chosen together, `calibrate --pair`).",
            "",
            "| held-out scanner | crops | CA-RGB | CA-OD | ensemble | thresholds (alone) | thresholds (ensemble) |",
            "|---|---|---|---|---|---|---|",
        ]
        for s, v in loso.items():
            pair_t = v[f"LOSO {s} ensemble"].get("thresholds", (None, None))
            L.append(
                f"| {s} | {v[f'LOSO {s} CA-RGB'].get('loso_n', '-')} | "
                + " | ".join(_fmt(v[f"LOSO {s} {p}"]["loso_sensitivity"]) for p in ("CA-RGB", "CA-OD", "ensemble"))
                + f" | {_fmt(v[f'LOSO {s} CA-RGB']['threshold'], '{:.4f}')} / "
                f"{_fmt(v[f'LOSO {s} CA-OD']['threshold'], '{:.4f}')} | "
                f"{_fmt(pair_t[0], '{:.4f}')} / {_fmt(pair_t[1], '{:.4f}')} |"
            )
    L += [
        "",
        "### Tissue without mitosis labels: detections per mm² of tissue at the threshold",
        "",
        "| model | held-out MoNuSeg (15 tiles) | CCMCT (37 tiles) |",
        "|---|---|---|",
    ]
    for n in names:
        L.append(
            f"| {n} | {_fmt(b[n]['monuseg-heldout'][0], '{:.1f}')} ({b[n]['monuseg-heldout'][1]}) | "
            f"{_fmt(b[n]['ccmct'][0], '{:.1f}')} ({b[n]['ccmct'][1]}) |"
        )
    L += list(changes)
    L += _history_sections(ablations, gpu, cpu, old)
    L += [
        "",
        "### Training time of the bundled pair",
        "",
        "| model | CPU minutes | GPU minutes | epochs |",
        "|---|---|---|---|",
    ]
    for m in pair:
        t = m.meta.get("training_minutes", {})
        cpu_min, gpu_min = _fmt(t.get("cpu"), "{:.1f}"), _fmt(t.get("cuda"), "{:.1f}")
        L.append(f"| {m.name} | {cpu_min} | {gpu_min} | {m.meta.get('epoch', 'n/a')} |")
    return "\n".join(L) + "\n"


def _history_sections(ablations: dict, gpu: Path, cpu: Path, old: str) -> list[str]:
    """Ablations, hard-mining rounds and patch vs dense, from the training histories (validation by
    detection at each run's own best threshold, the rule `mitodet calibrate` uses), not re-measured;
    a section whose runs are not here is kept from the previous report (``old``)."""
    return _ablations(ablations, gpu, old) + _rounds(gpu, old) + _modes(cpu, old)


def _ablations(ablations: dict, gpu: Path, old: str) -> list[str]:
    heading = "### Ablations: one change each against the reference recipe (dense, CA-RGB)"
    if not history(gpu / "ca-rgb"):
        return kept_section(old, heading)
    L = [
        "",
        heading,
        "",
        "Training history at the same number of steps (epoch 2 = 200 steps of 64 windows, each run sharing "
        "one H100 with eleven others for 7 minutes), validation by detection on the same validation side "
        "(the no-AtNorM run has no AtNorM-MD validation crops). F1 as training measured it: detections on "
        "AtNorM-MD crop backgrounds still counted as false (lower than by the rule of the tables above).",
        "",
        "| run | change | val loss @ epoch 2 | F1 density @ epoch 2 | best F1 density (epoch) | s | f /mm² |",
        "|---|---|---|---|---|---|---|",
    ]
    rows_ = [("ca-rgb", "reference: dense, all data, strong colour + robustness jitter, resampled")]
    for run, what in rows_ + list(ablations.items()):
        h = history(gpu / run)
        e2, best = at_epoch(h, 2), best_row(h)
        L.append(
            f"| {run} | {what} | {_num(e2, 'val_loss')} | {_num(e2, 'val_f1_density')} | "
            f"{_num(best, 'val_f1_density')} ({best.get('epoch', '-')}) | {_num(best, 'val_sensitivity')} | "
            f"{_num(best, 'val_fp_per_mm2', '{:.1f}')} |"
        )
    return L


def _rounds(gpu: Path, old: str) -> list[str]:
    heading = "### Hard-negative mining rounds and online hard negatives (CPU, from the GPU reference)"
    runs = round_runs(gpu)
    if not runs:
        return kept_section(old, heading)
    L = [
        "",
        heading,
        "",
        "`round1` is a hard-mining round (the previous model's false detections added as windows, "
        "`mitodet mine hard`, one CPU thread, at most 60 minutes); 'online' is the share of the hardest "
        "negative cells kept in each batch's loss. Best epoch of each run on its validation side, F1 as "
        "training measured it (AtNorM-MD backgrounds counted as false).",
        "",
        "| run | online | epochs | F1 density (val) | s | f /mm² | threshold |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        h = history(gpu / run)
        best = best_row(h)
        L.append(
            f"| {run} | {online_fraction(gpu / run)} | {len(h)} | {_num(best, 'val_f1_density')} | "
            f"{_num(best, 'val_sensitivity')} | {_num(best, 'val_fp_per_mm2', '{:.1f}')} | "
            f"{_num(best, 'val_threshold', '{:.4f}')} |"
        )
    return L


def _modes(cpu: Path, old: str) -> list[str]:
    heading = "### Patch mode against dense mode at equal CPU minutes (`scripts/compare_modes.sh 25`)"
    if not any(history(cpu / run) for run in ("patch", "dense")):
        return kept_section(old, heading)
    L = [
        "",
        heading,
        "",
        "| mode | epochs | samples seen | val loss (last) | best F1 density (val) | s | f /mm² |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in ("patch", "dense"):
        h = history(cpu / run)
        if h:
            best = best_row(h)
            seen = sum(float(r["patches_per_s"]) * float(r["seconds"]) for r in h)
            L.append(
                f"| {run} | {len(h)} | {seen:,.0f} {'patches' if run == 'patch' else 'windows'} | "
                f"{_num(h[-1], 'val_loss')} | {_num(best, 'val_f1_density')} | {_num(best, 'val_sensitivity')} | "
                f"{_num(best, 'val_fp_per_mm2', '{:.1f}')} |"
            )
    return L


def card_tables(results: dict, pair: list[Model]) -> str:
    b = results["bundled"]
    names = [m.name for m in pair] + ["bundled ensemble"]
    lines = ["| test | CA-RGB | CA-OD | ensemble |", "|---|---|---|---|"]
    lines.append(
        f"| F1 at {MIDOG_DENSITY} mitoses/mm² (validation) | "
        + " | ".join(_fmt(b[n]["val"]["all"]["f1_density"]) for n in names)
        + " |"
    )
    lines.append("| ICPR 2012 official F1 | " + " | ".join(_fmt(b[n]["icpr"]["f1"]) for n in names) + " |")
    if "fields" in b[names[0]]:
        lines.append(
            "| official F1, held-back MITOS-ATYPIA-14 frames | "
            + " | ".join(_fmt(b[n]["fields"]["f1"]) for n in names)
            + " |"
        )
    lines.append(
        "| detections / mm², held-out MoNuSeg | "
        + " | ".join(_fmt(b[n]["monuseg-heldout"][0], "{:.1f}") for n in names)
        + " |"
    )
    lines.append("| detections / mm², CCMCT | " + " | ".join(_fmt(b[n]["ccmct"][0], "{:.1f}") for n in names) + " |")
    lines += ["", "| model | threshold | CPU minutes | GPU minutes |", "|---|---|---|---|"]
    for m in pair:
        t = m.meta.get("training_minutes", {})
        lines.append(
            f"| {m.name} | {m.threshold:.4f} | {_fmt(t.get('cpu'), '{:.1f}')} | {_fmt(t.get('cuda'), '{:.1f}')} |"
        )
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = results["bundled"]
    names = list(b)
    fig, ax = plt.subplots(1, 4, figsize=(16, 3.8))
    x = np.arange(len(names))
    ax[0].bar(x, [b[n]["val"]["all"]["f1_density"] for n in names], color="C0")
    ax[0].axhline(TARGETS["f1_density"], color="C3", ls="--", label="target")
    ax[0].set_title(f"F1 at {MIDOG_DENSITY} MF/mm² (validation)")
    ax[1].bar(x, [b[n].get("fields", {}).get("f1", np.nan) for n in names], color="C2")
    ax[1].axhline(TARGETS["fields"], color="C3", ls="--")
    ax[1].set_title("held-back MITOS-ATYPIA-14 frames, F1")
    ax[2].bar(x, [b[n]["icpr"]["f1"] for n in names], color="C1")
    ax[2].axhline(TARGETS["icpr"], color="C3", ls="--")
    ax[2].set_title("ICPR 2012 official F1")
    ax[3].bar(x - 0.2, [b[n]["monuseg-heldout"][0] for n in names], 0.4, label="MoNuSeg held-out")
    ax[3].bar(x + 0.2, [b[n]["ccmct"][0] for n in names], 0.4, label="CCMCT")
    ax[3].axhline(TARGETS["tissue"], color="C3", ls="--")
    ax[3].set_title("detections / mm² of tissue")
    ax[3].legend(fontsize=8)
    for a in ax[:3]:
        a.set_ylim(0, 1)
    for a in ax:
        a.set_xticks(x, [n.replace("bundled ", "") for n in names])
    ax[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
