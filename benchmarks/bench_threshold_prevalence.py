"""Is it the lab or the prevalence? Why the best threshold moves between sources (#17 item 2).

The fully labelled sources of ``bench_threshold_transfer.py`` differ in more than their lab: the
MITOS-ATYPIA-14 frames are whole fields (about 11 mitoses per mm²), the ICPR 2012 patches are cut
around mitoses (20 patches centred on one, 30 without: about 116 per mm²) and the MIDOG 2021 crops
are 128-px crops centred on one (about 1,000 per mm²). A detector's F1-optimal threshold falls as
mitoses become more common, whatever the lab. To tell the two apart, the MITOS-ATYPIA-14 frames
are cut the way the other two sources were cut, from the same real pixels and labels:

* like ICPR 2012: a 256-px patch centred on each mitosis (every mitosis inside it labelled), and
  1.5 patches with no mitosis per such patch, at random (seeded) in the same frames;
* like the MIDOG 2021 crops: a 128-px crop centred on each mitosis.

Same lab, other prevalence: frames against their cuts. Same cut, other lab: a cut against the
source it copies. Each model's best threshold (official F1, 7.5 µm) is searched in logit space on
each source, and each source is scored at the stored threshold, at the best one of the whole
frames, and at the best one of its twin (same cut, other lab): a threshold that travels between
labs at equal prevalence scores there near the source's own best. The pair's agreement ensemble
too, from the same candidates, both thresholds moved by one logit shift (its "logit" is the
CA-RGB model's). Candidates come from (and are
cached like) ``bench_threshold_transfer.py``; the cuts are written once under runs/bench-cache/.
Prints a table; writes benchmarks/results/bench_threshold_prevalence.csv.

    python benchmarks/bench_threshold_prevalence.py [--models CA_RGB.pt CA_OD.pt] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_threshold_transfer import ROOT, candidates, counts, f1, logit, sources  # noqa: E402
from tables import show_and_write  # noqa: E402

from mitodet.data.fields import load_mitos_atypia14  # noqa: E402
from mitodet.evaluate.matching import score_detection  # noqa: E402
from mitodet.infer.ensemble import agreement_pairs  # noqa: E402
from mitodet.io.atomic import atomic_path  # noqa: E402
from mitodet.model import load_checkpoint  # noqa: E402
from mitodet.resources import DEFAULT_MODELS  # noqa: E402
from mitodet.schema import MATCH_RADIUS_UM  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CUTS = ROOT / "runs" / "bench-cache" / "prevalence"
LOGITS = np.round(np.arange(-2.9, 12.0, 0.1), 2)  # candidates start at p 0.05 (logit -2.94)
ICPR_CUT = (256, 1.5)  # patch size, patches without a mitosis per patch centred on one
CROP_CUT = (128, 0.0)
TWINS = {  # same cut, other lab
    "MITOS-ATYPIA-14 cut like ICPR 2012": "ICPR 2012",
    "ICPR 2012": "MITOS-ATYPIA-14 cut like ICPR 2012",
    "MITOS-ATYPIA-14 cut like MIDOG21 crops": "MIDOG21 val crops",
    "MIDOG21 val crops": "MITOS-ATYPIA-14 cut like MIDOG21 crops",
}


def _window(c: float, size: int, n: int) -> int:
    """Start of a ``size`` window centred on ``c``, kept inside ``n`` pixels."""
    return int(min(max(round(c - size / 2), 0), n - size))


def _inside(p, x0: int, y0: int, size: int, margin: float = 0.0) -> bool:
    return x0 - margin <= p.x < x0 + size + margin and y0 - margin <= p.y < y0 + size + margin


def cut(size: int, negatives: float, seed: int = 0) -> list:
    """The MITOS-ATYPIA-14 frames cut into ``size``-px patches: one centred on each mitosis, and
    ``negatives`` per such patch with no mitosis within a matching radius of it -> items of
    ``bench_threshold_transfer.sources``."""
    frames = load_mitos_atypia14(DATA / "mitos_atypia14").images
    folder = CUTS / f"ma14-{size}-{negatives}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    windows = []  # (frame record, x0, y0, kind)
    for r in frames:
        windows += [(r, _window(p.x, size, r.width), _window(p.y, size, r.height), "mf") for p in r.mitoses]
    margin = MATCH_RADIUS_UM / frames[0].mpp
    want, tries = round(negatives * len(windows)), 0
    while sum(w[3] == "neg" for w in windows) < want and tries < 100 * max(want, 1):
        tries += 1
        r = frames[rng.integers(len(frames))]
        x0, y0 = int(rng.integers(r.width - size + 1)), int(rng.integers(r.height - size + 1))
        if not any(_inside(p, x0, y0, size, margin) for p in r.mitoses):
            windows.append((r, x0, y0, "neg"))
    items = []
    for k, (r, x0, y0, kind) in enumerate(windows):
        path = folder / f"{r.path.stem}_{kind}{k}.png"
        if not path.is_file():
            with Image.open(r.path) as im, atomic_path(path) as tmp:
                im.convert("RGB").crop((x0, y0, x0 + size, y0 + size)).save(tmp, format="PNG")
        truth = [(p.x - x0, p.y - y0) for p in r.mitoses if _inside(p, x0, y0, size)]
        items.append((f"{path.stem}@{size}", path, r.mpp, truth))
    return items


def density(items: list) -> float:
    """Labelled mitoses per mm² of image."""
    area = sum(Image.open(p).size[0] * Image.open(p).size[1] * mpp**2 for _, p, mpp, _ in items) / 1e6
    return sum(len(t) for *_, t in items) / area


def pairs(ca: dict, cb: dict) -> dict[str, np.ndarray]:
    """id -> (n, 4) candidates (x, y µm, pa, pb) of the agreement ensemble: the two models'
    candidates paired one-to-one within the matching radius, as detection pairs them."""
    out = {}
    for iid, a in ca.items():
        b = cb[iid]
        ij = agreement_pairs(*([SimpleNamespace(x=r[0], y=r[1]) for r in c] for c in (a, b)), MATCH_RADIUS_UM)
        out[iid] = np.array([((a[i, 0] + b[j, 0]) / 2, (a[i, 1] + b[j, 1]) / 2, a[i, 2], b[j, 2]) for i, j in ij])
        out[iid] = out[iid].reshape(-1, 4)
    return out


def table(model: str, names: list[str], data: dict, f1_at, stored: float) -> list[dict]:
    """Rows of one model (or the ensemble): ``f1_at(source, logit)`` is its official F1 there with
    the threshold at that logit (the ensemble: its CA-RGB threshold, the CA-OD one moved alike)."""
    best = {}
    for n in names:
        scores = [f1_at(n, z) for z in LOGITS]
        k = int(np.argmax(scores))  # ties: the lowest logit
        best[n] = (float(LOGITS[k]), scores[k])
    rows = []
    for n in names:
        items, twin = data[n], TWINS.get(n)
        at = lambda z, n=n: round(f1_at(n, z), 3)  # noqa: E731
        rows.append({"model": model, "source": n, "images": len(items), "mitoses": sum(len(t) for *_, t in items),
                     "per mm2": round(density(items), 1), "best logit": best[n][0], "F1 at best": round(best[n][1], 3),
                     "F1 stored": at(stored), "F1 at the frames' best": at(best[names[0]][0]),
                     "F1 at the other lab's best, same cut": at(best[twin][0]) if twin else ""})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, nargs=2, default=DEFAULT_MODELS, metavar=("CA_RGB", "CA_OD"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_threshold_prevalence.csv")
    a = ap.parse_args()
    cuts = {"MITOS-ATYPIA-14 cut like ICPR 2012": cut(*ICPR_CUT),
            "MITOS-ATYPIA-14 cut like MIDOG21 crops": cut(*CROP_CUT)}  # fmt: skip
    names = ["MITOS-ATYPIA-14 frames", *cuts, "ICPR 2012", "MIDOG21 val crops"]
    metas = [load_checkpoint(m)[1] for m in a.models]
    data = sources(set((metas[0].get("validation") or {}).get("ids", []))) | cuts  # the pair's validation side
    data = {"MITOS-ATYPIA-14 frames" if k == "MITOS-ATYPIA-14" else k: v for k, v in data.items()}
    given = [logit(float(m.get("threshold", 0.5))) for m in metas]
    cands = [{n: candidates(m, n, data[n], a.threads) for n in names} for m in a.models]
    rows = []
    for ckpt, c, g in zip(a.models, cands, given, strict=True):
        f1_at = lambda n, z, c=c: f1(*counts(data[n], c[n], sigmoid(z)))  # noqa: E731
        rows += table(ckpt.stem, names, data, f1_at, g)
    pc = {n: pairs(cands[0][n], cands[1][n]) for n in names}
    f1_pair = lambda n, z: f1(*pair_counts(data[n], pc[n], sigmoid(z), sigmoid(z - given[0] + given[1])))  # noqa: E731
    rows += table("ensemble", names, data, f1_pair, given[0])
    show_and_write(rows, a.out)


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def pair_counts(items: list, pc: dict, ta: float, tb: float) -> tuple[int, int, int]:
    """(TP, FN, FP) of the ensemble: a pair is called when both probabilities reach their threshold."""
    tp = fn = fp = 0
    for iid, _, mpp, truth in items:
        c = pc[iid]
        called = [tuple(r[:2]) for r in c[(c[:, 2] >= ta) & (c[:, 3] >= tb)]]
        s = score_detection([(x * mpp, y * mpp) for x, y in truth], called, MATCH_RADIUS_UM)
        tp, fn, fp = tp + s.true_positives, fn + s.false_negatives, fp + s.false_positives
    return tp, fn, fp


if __name__ == "__main__":
    main()
