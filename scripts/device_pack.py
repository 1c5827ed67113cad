"""Pack the training data for a GPU machine that cannot see ../shared/data.

The device tool carries at most 64 MiB, so the MIDOG 2021 crops travel as
lossless WebP (same pixels as the PNGs, ~39 MB instead of 53 MB) and the tissue
tiles used for training as lossless WebP too. The CSV indexes are copied with
their paths rewritten. Nothing here is committed: the pack lands in .device/
(ignored) and is named in the device call's `carry`.

Usage: python scripts/device_pack.py [--tissue-list FILE] [--out .device/data]
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def webp(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.open(src).convert("RGB").save(dst, "WEBP", lossless=True, method=4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path(".device/data"))
    ap.add_argument("--tissue", nargs="*", default=[], help="tissue tiles (paths under ../shared/data/tissue) to carry")
    args = ap.parse_args()
    out = args.out
    crops = SHARED / "midog21_crops"
    dst = out / "midog21_crops"
    for name in ("crops.csv", "labels_in_crops.csv"):
        rows = list(csv.reader(open(crops / name)))
        for r in rows[1:]:
            r[0] = r[0].replace(".png", ".webp")
        dst.mkdir(parents=True, exist_ok=True)
        with open(dst / name, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    for src in sorted((crops / "images").glob("*.png")):
        target = dst / "images" / (src.stem + ".webp")
        if not target.exists():
            webp(src, target)
    shutil.copy(crops / "SOURCE.md", dst / "SOURCE.md")
    for t in args.tissue:
        src = Path(t)
        rel = src.resolve().relative_to((SHARED / "tissue").resolve())
        target = out / "tissue" / rel.with_suffix(".webp")
        if not target.exists():
            webp(src, target)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"device pack at {out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
