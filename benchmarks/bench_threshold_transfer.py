"""How far a threshold travels (#17 item 2): choose it on one labelled source, score it on another.

Three sources in which every mitosis is labelled, and which the bundled pair never trained on:
the 96 MITOS-ATYPIA-14 frames (one Aperio slide, 135 mitoses), the 50 ICPR 2012 patches (another
Aperio lab) and the MIDOG 2021 validation crops of the bundled pair (four scanners; the bundled
threshold was chosen on these, with tissue). For each model the calibration rules are:

* the threshold stored in the checkpoint (the bundled calibration);
* the best official F1 on one source (pooled over its images), searched in logit space;
* the best F1 on the two OTHER sources pooled (leave-one-source-out), which is what a new lab
  gets from calibrating on every source we have;

and each is scored by the official F1 (7.5 µm) on every source. ``cost`` is the mean F1 lost,
against the best threshold of each target itself, on the targets the rule did not calibrate on.
Candidates are cached under runs/bench-cache/. Prints a table; writes
benchmarks/results/bench_threshold_transfer.csv.

``--macenko`` first normalises every image's stains (Macenko) to the median of the training crops
(H and E directions and their 99th-percentile concentrations, the residual kept): does a common
colour make the threshold travel? Its rows go to bench_threshold_transfer_macenko.csv.

    python benchmarks/bench_threshold_transfer.py [--models A.pt B.pt] [--threads 1] [--macenko]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from tables import show_and_write  # noqa: E402

from mitodet.data.crops import load_icpr2012, load_midog21_crops  # noqa: E402
from mitodet.data.fields import load_mitos_atypia14  # noqa: E402
from mitodet.evaluate.matching import score_detection  # noqa: E402
from mitodet.infer.detector import Detector  # noqa: E402
from mitodet.io.atomic import atomic_path  # noqa: E402
from mitodet.io.image import read_image  # noqa: E402
from mitodet.model import load_checkpoint  # noqa: E402
from mitodet.resources import DEFAULT_MODELS  # noqa: E402
from mitodet.schema import MATCH_RADIUS_UM  # noqa: E402
from mitodet.stain.macenko import StainError, StainVectors, macenko_vectors, unmix  # noqa: E402
from mitodet.stain.od import od_to_rgb  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "runs" / "bench-cache" / "threshold-transfer"
FLOOR = 0.05


def logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def sources(val_ids: set[str]) -> dict[str, list]:
    """name -> [(id, path, mpp, [(x, y) px of every mitosis])]."""
    ma14 = load_mitos_atypia14(DATA / "mitos_atypia14").images
    icpr = load_icpr2012(DATA / "icpr2012_patches").images
    crops = [r for r in load_midog21_crops(DATA / "midog21_crops") if r.id in val_ids]
    rows = lambda recs: [(r.id, r.path, r.mpp, [(p.x, p.y) for p in r.mitoses]) for r in recs]  # noqa: E731
    return {"MITOS-ATYPIA-14": rows(ma14), "ICPR 2012": rows(icpr), "MIDOG21 val crops": rows(crops)}


class Macenko:
    """Stain normalisation to a reference: each image's H and E concentrations (Macenko) scaled to
    the reference's 99th percentiles and remixed with the reference's stain directions."""

    def __init__(self, crops: list):
        vecs, peaks = [], []
        for r in crops:
            px, _ = read_image(r.path, r.mpp)
            try:
                sv = macenko_vectors(px)
            except StainError:
                continue
            vecs.append(sv.matrix[:2])
            peaks.append(self.peaks(px, sv))
        h, e = (v / np.linalg.norm(v) for v in np.median(vecs, axis=0))
        r = np.cross(h, e)
        self.ref = StainVectors(h, e, r / np.linalg.norm(r) * np.sign(r.sum()))
        self.peak = np.median(peaks, axis=0)
        print(f"Macenko reference from {len(vecs)} training crops: H {h.round(3)}, E {e.round(3)}, peaks {self.peak}")

    @staticmethod
    def peaks(rgb: np.ndarray, sv: StainVectors) -> np.ndarray:
        return np.percentile(unmix(rgb, sv).reshape(-1, 3)[:, :2], 99, axis=0)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        try:
            sv = macenko_vectors(rgb)
        except StainError:  # no tissue or one stain: nothing to normalise
            return rgb
        conc = unmix(rgb, sv)
        conc[..., :2] *= self.peak / np.maximum(self.peaks(rgb, sv), 1e-3)
        return od_to_rgb(conc @ self.ref.matrix)


def weights_key(ckpt: Path) -> bytes:
    """The checkpoint's weights and spacing, not its threshold: candidates do not depend on the
    threshold, so a recalibrated checkpoint (``scripts/recalibrate_bundled.py``) reuses them."""
    net, meta = load_checkpoint(ckpt)
    parts = [repr(net.config).encode(), repr((meta.get("mpp"), meta.get("interpolation"))).encode()]
    parts += [k.encode() + v.detach().cpu().numpy().tobytes() for k, v in net.state_dict().items()]
    return hashlib.sha1(b"".join(parts)).digest()


def candidates(ckpt: Path, name: str, items: list, threads: int, norm: Macenko | None = None) -> dict[str, np.ndarray]:
    """id -> (n, 3) candidates (x µm, y µm, probability >= FLOOR), cached by checkpoint and source."""
    key = weights_key(ckpt) + "\n".join(i[0] for i in items).encode() + (b"macenko" if norm else b"")
    path = CACHE / f"{hashlib.sha1(key).hexdigest()[:12]}.npz"
    if path.is_file():
        z = np.load(path)
        return {i[0]: z[f"c{k}"] for k, i in enumerate(items)}
    det = Detector.from_checkpoint(ckpt, threads=threads)
    out = {}
    for k, (iid, p, mpp, _) in enumerate(items, 1):
        px, _ = read_image(p, mpp)
        c = det.candidates(norm(px) if norm else px, mpp, floor=FLOOR)
        out[iid] = np.array([(d.x * mpp, d.y * mpp, d.probability) for d in c], float).reshape(-1, 3)
        print(f"\r{ckpt.name} on {name}: {k}/{len(items)}", end="", flush=True)
    print()
    CACHE.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **{f"c{k}": out[i[0]] for k, i in enumerate(items)})
    return out


def counts(items: list, cands: dict, t: float) -> tuple[int, int, int]:
    tp = fn = fp = 0
    for iid, _, mpp, truth in items:
        c = cands[iid]
        s = score_detection(
            [(x * mpp, y * mpp) for x, y in truth], [tuple(r[:2]) for r in c[c[:, 2] >= t]], MATCH_RADIUS_UM
        )
        tp, fn, fp = tp + s.true_positives, fn + s.false_negatives, fp + s.false_positives
    return tp, fn, fp


def f1(tp: int, fn: int, fp: int) -> float:
    return 2 * tp / max(1, 2 * tp + fn + fp)


def best(srcs: list[str], data: dict, cands: dict, grid: np.ndarray) -> float:
    """The threshold of the best F1 pooled over ``srcs`` (TP/FN/FP summed)."""
    scores = [f1(*np.sum([counts(data[s], cands[s], t) for s in srcs], axis=0)) for t in grid]
    return float(grid[int(np.argmax(scores))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--macenko", action="store_true", help="normalise stains first (Macenko, to the training crops)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    out = a.out or ROOT / "benchmarks" / "results" / f"bench_threshold_transfer{'_macenko' if a.macenko else ''}.csv"
    rows = []
    for ckpt in a.models:
        meta = load_checkpoint(ckpt)[1]
        val_ids = set((meta.get("validation") or {}).get("ids", []))
        data = sources(val_ids)
        names = list(data)
        norm = None
        if a.macenko:  # every 8th training crop of the model
            norm = Macenko([r for r in load_midog21_crops(DATA / "midog21_crops") if r.id not in val_ids][::8])
        cands = {s: candidates(ckpt, s, data[s], a.threads, norm) for s in names}
        probs = np.concatenate([c[:, 2] for s in names for c in cands[s].values()])
        grid = np.unique(np.quantile(probs, np.linspace(0, 1, 150)))  # spaced by the candidates
        oracle = {s: best([s], data, cands, grid) for s in names}
        rules = {"stored in the checkpoint": (float(meta.get("threshold", 0.5)), [])}
        rules |= {f"best on {s}": (oracle[s], [s]) for s in names}
        rules |= {
            f"best on all but {s}": (
                best([o for o in names if o != s], data, cands, grid),
                [o for o in names if o != s],
            )
            for s in names
        }
        for rule, (t, used) in rules.items():
            row = {"model": ckpt.stem, "rule": rule, "threshold": round(t, 5), "logit": round(logit(t), 2)}
            lost = []
            for s in names:
                tp, fn, fp = counts(data[s], cands[s], t)
                best_f1 = f1(*counts(data[s], cands[s], oracle[s]))
                row[f"F1 {s}"] = round(f1(tp, fn, fp), 3)
                row[f"TP/FN/FP {s}"] = f"{tp}/{fn}/{fp}"
                if s not in used:
                    lost.append(best_f1 - f1(tp, fn, fp))
            row["cost"] = round(float(np.mean(lost)), 3)
            rows.append(row)
        rows.append(
            {"model": ckpt.stem, "rule": "(each target's own best)", "threshold": "", "logit": ""}
            | {f"F1 {s}": round(f1(*counts(data[s], cands[s], oracle[s])), 3) for s in names}
            | {f"TP/FN/FP {s}": "/".join(map(str, counts(data[s], cands[s], oracle[s]))) for s in names}
            | {"cost": 0.0}
        )
        for s in names:
            print(f"{ckpt.stem}: best threshold on {s}: {oracle[s]:.5f} (logit {logit(oracle[s]):.2f})")
    show_and_write(rows, out)


if __name__ == "__main__":
    main()
