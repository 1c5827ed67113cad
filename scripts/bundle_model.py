"""Copy a calibrated training checkpoint into mitodet/weights/ with its model-card metadata.

Usage: python scripts/bundle_model.py RUN_DIR NAME
  e.g. python scripts/bundle_model.py runs/gpu/ca-rgb/round1 default-ca-rgb

The run must have been calibrated (`mitodet calibrate RUN`: F1 at 11.1 mitoses/mm², or its mean
with the official F1 of whole labelled fields). Stored with
the weights: the run's validation side (crop ids and tissue tiles, so the model report can
re-measure it), the CPU and GPU minutes of every run in its ``model.init`` chain, the data
licences, and paths of the training machine rewritten to the ../shared/data layout.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import yaml

from mitodet.model import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RULES = ("f1_density", "f1_density_pair", "f1_mean", "f1_mean_pair")  # `mitodet calibrate` rules of bundles
LICENCES = {
    "midog21_crops": "MIDOG 2021 (CC BY-NC-ND 4.0) - research / non-commercial use",
    "atnorm_md": "AtNorM-MD (MIT) of MIDOG++ (CC0)",
    "tissue/monuseg": "MoNuSeg 2018 / TCGA (research use, CC BY-NC-SA 4.0 per the challenge site)",
}


def _portable(value):
    """Rewrite training-machine paths (…/.device/shared/data/…, /work/shared/data/…) as ../shared/data/…."""
    text = json.dumps(value)
    for prefix in ("/work/main/.device/shared/data/", "/work/shared/data/"):
        text = text.replace(prefix, "../shared/data/")
    return json.loads(text)


def chain(run: Path) -> list[Path]:
    """The run, the runs its weights started from (config model.init), newest first, and a bundled
    checkpoint the chain started from (mitodet/weights/*.pt: its own minutes already sum its chain)."""
    out = [run]
    while out[-1].is_dir():
        init = yaml.safe_load((out[-1] / "config.yaml").read_text())["model"].get("init")
        if not init or not Path(init).is_file():
            return out
        init = Path(init)
        out.append(init.parent if (init.parent / "config.yaml").is_file() else init)
    return out


def best_of(step: Path) -> Path:
    return step / "best.pt" if step.is_dir() else step


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run, name = Path(sys.argv[1]), sys.argv[2]
    model, meta = load_checkpoint(run / "best.pt")
    calibration = json.loads((run / "calibration.json").read_text()) if (run / "calibration.json").is_file() else {}
    if "threshold" not in meta or calibration.get("rule") not in RULES:
        sys.exit(f"{run}: not calibrated by F1 at density (or f1_mean); run `mitodet calibrate {run}` first")
    minutes = {"cpu": 0.0, "cuda": 0.0}
    runs = chain(run)
    for r in runs:
        for k, v in load_checkpoint(best_of(r))[1].get("training_minutes", {}).items():
            minutes[k] = minutes.get(k, 0.0) + v
    split = json.loads((run / "split.json").read_text())
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    meta = _portable(meta)
    meta.update(
        name=name,
        bundled=datetime.date.today().isoformat(),
        licences=LICENCES,
        card="mitodet/weights/MODEL_CARD.md",
        training_minutes={k: round(v, 1) for k, v in minutes.items()},
        training_chain=[str(r) for r in runs],
        validation={"ids": split["val"], "tissue": [Path(p).name for p in cfg["val"]["tissue"]]},
    )
    meta["calibration"] = _portable({k: v for k, v in calibration.items() if k not in ("checkpoint", "curve")})
    dst = ROOT / "mitodet" / "weights" / f"{name}.pt"
    save_checkpoint(dst, model, **meta)
    print(f"{dst}: {dst.stat().st_size / 1024:.0f} KiB, threshold {meta['threshold']:.4f}, minutes {minutes}")


if __name__ == "__main__":
    main()
