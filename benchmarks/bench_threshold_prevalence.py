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
labs at equal prevalence scores there near the source's own best. Candidates come from (and are
cached like) ``bench_threshold_transfer.py``; the cuts are written once under runs/bench-cache/.
Prints a table; writes benchmarks/results/bench_threshold_prevalence.csv.

    python benchmarks/bench_threshold_prevalence.py [--models A.pt B.pt] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_threshold_transfer import ROOT, candidates, counts, f1, logit, sources  # noqa: E402

from mitodet.data.fields import load_mitos_atypia14  # noqa: E402
from mitodet.io.atomic import atomic_path, write_csv  # noqa: E402
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


def best_logit(items: list, cands: dict) -> tuple[float, float]:
    """(logit, F1) of the best official F1 on ``items`` (ties: the lowest logit)."""
    scores = [f1(*counts(items, cands, 1 / (1 + math.exp(-z)))) for z in LOGITS]
    k = int(np.argmax(scores))
    return float(LOGITS[k]), float(scores[k])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_threshold_prevalence.csv")
    a = ap.parse_args()
    cuts = {"MITOS-ATYPIA-14 cut like ICPR 2012": cut(*ICPR_CUT),
            "MITOS-ATYPIA-14 cut like MIDOG21 crops": cut(*CROP_CUT)}  # fmt: skip
    rows = []
    for ckpt in a.models:
        meta = load_checkpoint(ckpt)[1]
        data = sources(set((meta.get("validation") or {}).get("ids", []))) | cuts
        data = {"MITOS-ATYPIA-14 frames" if k == "MITOS-ATYPIA-14" else k: v for k, v in data.items()}
        stored = logit(float(meta.get("threshold", 0.5)))
        names = ["MITOS-ATYPIA-14 frames", *cuts, "ICPR 2012", "MIDOG21 val crops"]
        cands = {n: candidates(ckpt, n, data[n], a.threads) for n in names}
        best = {n: best_logit(data[n], cands[n]) for n in names}
        for name in names:
            items = data[name]
            at = lambda z: round(f1(*counts(items, cands[name], 1 / (1 + math.exp(-z)))), 3)  # noqa: E731
            twin = TWINS.get(name)
            rows.append({"model": ckpt.stem, "source": name, "images": len(items),
                         "mitoses": sum(len(t) for *_, t in items), "per mm2": round(density(items), 1),
                         "best logit": best[name][0], "F1 at best": round(best[name][1], 3), "F1 stored": at(stored),
                         "F1 at the frames' best": at(best[names[0]][0]),
                         "F1 at the other lab's best, same cut": at(best[twin][0]) if twin else ""})  # fmt: skip
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    write_csv(a.out, cols, rows)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
