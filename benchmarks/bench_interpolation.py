"""Which interpolation should detection use when it resamples? Measured, not guessed (issue #11).

Two measurements with the bundled pair:

1. a 20x scan simulated from the ICPR 2012 patches (0.2456 µm/px, read at 0.49 µm/px with
   Pillow's area filter) and detected again at 0.25 µm/px with each filter: official F1 and
   detections of each model (the lost resolution cannot come back; a good filter loses least);
2. the real 20x slide ``CMU-1-Small-Region.svs`` (0.499 µm/px) read at 0.25 µm/px with each
   filter: map cells >= 0.5 and mitotic figures called (a model fragile to the filter changes a
   lot between filters; no labels exist, so fewer is not better by itself).

Prints a table and writes benchmarks/results/bench_interpolation.csv.

    python benchmarks/bench_interpolation.py [--data ../shared/data] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mitodet.data.crops import load_icpr2012  # noqa: E402
from mitodet.evaluate import score  # noqa: E402
from mitodet.infer import Detector, detect_image  # noqa: E402
from mitodet.io.atomic import write_csv  # noqa: E402
from mitodet.io.slide import open_slide  # noqa: E402
from mitodet.schema import MATCH_RADIUS_UM  # noqa: E402

FILTERS = ("bilinear", "bicubic", "lanczos")
WEIGHTS = ROOT / "mitodet" / "weights"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patches", type=int, default=None, help="the first N ICPR patches only (default: all 50)")
    args = ap.parse_args()
    icpr = load_icpr2012(args.data / "icpr2012_patches").images[: args.patches]
    rows = []
    for flt in FILTERS:
        dets = [
            Detector.from_checkpoint(
                WEIGHTS / f"default-{m}.pt", threads=args.threads, interpolation=flt, backend="auto"
            )
            for m in ("ca-rgb", "ca-od")
        ]
        truth, pred, n_cand = {}, {}, 0
        for r in icpr:
            img = np.asarray(Image.open(r.path).convert("RGB"))
            h, w = img.shape[:2]
            small = np.asarray(Image.fromarray(img).resize((round(w / 2), round(h / 2)), Image.Resampling.BOX))
            mpp = r.mpp * w / small.shape[1]
            d = detect_image(dets, small, mpp)
            truth[r.id] = [(p.x * r.mpp, p.y * r.mpp) for p in r.points]
            pred[r.id] = [(x.x * mpp, x.y * mpp) for x in d if x.is_mitosis]
            n_cand += sum(x.is_mitosis for x in d)
        s = score(truth, pred, MATCH_RADIUS_UM)
        with open_slide(args.data / "wsi" / "CMU-1-Small-Region.svs") as slide:
            native, slide_mpp = slide.read(slide.mpp), slide.mpp  # 0.499 µm/px: the detector upsamples it
        pm = dets[0].probability_map(native, slide_mpp)
        called = sum(x.is_mitosis for x in detect_image(dets, native, slide_mpp))
        rows.append(
            {
                "filter": flt,
                "icpr_patches": len(icpr),
                "icpr20x_f1": round(s["f1"], 3),
                "icpr20x_tp": s["tp"],
                "icpr20x_fp": s["fp"],
                "icpr20x_called": n_cand,
                "cmu1_cells_ge_0.5": int((pm.prob >= 0.5).sum()),
                "cmu1_called": called,
            }
        )
    write_csv(ROOT / "benchmarks" / "results" / "bench_interpolation.csv", list(rows[0]), rows)
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for r in rows:
        print("| " + " | ".join(str(v) for v in r.values()) + " |")


if __name__ == "__main__":
    main()
