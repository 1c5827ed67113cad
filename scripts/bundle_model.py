"""Copy a calibrated training checkpoint into mitodet/weights/ with its model-card metadata.

Usage: python scripts/bundle_model.py RUN_DIR NAME
  e.g. python scripts/bundle_model.py runs/gpu2/ca-rgb default-ca-rgb

The run must have been calibrated (`mitodet calibrate RUN`). Absolute paths of
the machine it was trained on are rewritten to the ../shared/data layout, and the
data licences travel inside the weights (see mitodet/weights/MODEL_CARD.md).
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

from mitodet.model import load_checkpoint, save_checkpoint

LICENCES = {
    "midog21_crops": "MIDOG 2021 (CC BY-NC-ND 4.0) - research / non-commercial use",
    "tissue/monuseg": "MoNuSeg 2018 / TCGA (research use, CC BY-NC-SA 4.0 per the challenge site)",
}


def _portable(value):
    """Rewrite training-machine paths (…/.device/data/…, /work/…/shared/data/…) as ../shared/data/…."""
    text = json.dumps(value)
    for prefix in ("/work/main/.device/data/", "/work/shared/data/"):
        text = text.replace(prefix, "../shared/data/")
    return json.loads(text)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run, name = Path(sys.argv[1]), sys.argv[2]
    model, meta = load_checkpoint(run / "best.pt")
    if "threshold" not in meta:
        sys.exit(f"{run}/best.pt: not calibrated; run `mitodet calibrate {run}` first")
    meta = _portable(meta)
    meta.pop("calibration", None)  # the full PR curve stays in the run folder
    meta.update(
        name=name,
        bundled=datetime.date.today().isoformat(),
        licences=LICENCES,
        card="mitodet/weights/MODEL_CARD.md",
        trained_with="scripts/train_bundled.sh (H200), continued with mitodet train --set model.init=...",
    )
    dst = Path(__file__).resolve().parents[1] / "mitodet" / "weights" / f"{name}.pt"
    save_checkpoint(dst, model, **meta)
    print(f"{dst}: {dst.stat().st_size / 1024:.0f} KiB, threshold {meta['threshold']:.4f}")


if __name__ == "__main__":
    main()
