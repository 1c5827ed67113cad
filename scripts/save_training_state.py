"""Keep a training run resumable beyond this machine: copy what ``mitodet train --resume`` needs
(config.yaml, split.json, data.json, metrics.csv, last.pt, best.pt) into a small folder that can be
committed, with the data paths rewritten as ``../shared/data/...`` (relative to the project root,
where mitodet is run from). About 1 MB per run.

Usage: python scripts/save_training_state.py RUN_DIR DEST
  e.g. python scripts/save_training_state.py runs/gpu/ca-rgb-ohem/round1/round1 training-state/ca-rgb
then, on any machine with the data beside the project:
  mitodet train --resume training-state/ca-rgb --max-minutes 60 --set device=cpu
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import yaml

FILES = ("split.json", "data.json", "metrics.csv", "last.pt", "best.pt", "validation.json")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run, dest = Path(sys.argv[1]), Path(sys.argv[2])
    dest.mkdir(parents=True, exist_ok=True)
    text = re.sub(r"/[^\s'\"]*?/shared/data/", "../shared/data/", (run / "config.yaml").read_text())
    cfg = yaml.safe_load(text)  # data paths now relative to the project root
    cfg["model"]["init"] = None  # the weights are in last.pt already
    cfg["out"] = "runs"
    tables = []
    for i, table in enumerate(cfg["data"].get("hard_negatives", [])):  # mined anchors travel along
        shutil.copy(table, dest / f"hard_negatives_{i}.csv")
        tables.append(str(dest / f"hard_negatives_{i}.csv"))
    cfg["data"]["hard_negatives"] = tables
    if (run / "split.json").is_file():  # the split travels too; its old path is this machine's
        cfg.setdefault("split", {})["file"] = str(dest / "split.json")
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    for f in FILES:
        if (run / f).is_file():
            shutil.copy(run / f, dest / f)
    size = sum(p.stat().st_size for p in dest.iterdir()) / 1024
    print(f"{dest}: {size:.0f} KiB; resume with: mitodet train --resume {dest}")


if __name__ == "__main__":
    main()
