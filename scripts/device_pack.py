"""Pack the training data for a GPU machine that cannot see ../shared/data.

The device tool carries at most 64 MiB, so the MIDOG 2021 and AtNorM-MD crops travel as WebP at
quality 95 (mean absolute difference ~2.3 grey levels from the PNGs: far below the colour, blur
and resampling jitter training applies) and the tissue tiles likewise. The CSV indexes are
copied with their file names rewritten, under the same layout as ../shared/data, so the configs
work unchanged once the device's ``../shared`` points at the pack (scripts/train_gpu.sh does it).
Nothing here is committed: the pack lands in .device/ (ignored) and is named in the call's carry.
Thresholds and every number of the model report are measured here, on the original files.

Usage: python scripts/device_pack.py [--out .device/shared/data] [--quality 95]
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def webp(src: Path, dst: Path, quality: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.open(src).convert("RGB").save(dst, "WEBP", quality=quality, method=4)


def pack_crops(name: str, tables: list[str], out: Path, quality: int) -> None:
    src, dst = SHARED / name, out / name
    dst.mkdir(parents=True, exist_ok=True)
    for table in tables:
        rows = list(csv.reader(open(src / table, newline="")))
        for r in rows[1:]:
            r[0] = r[0].replace(".png", ".webp")
        with open(dst / table, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    for f in sorted((src / "images").glob("*.png")):
        target = dst / "images" / (f.stem + ".webp")
        if not target.exists():
            webp(f, target, quality)


def tissue_in(config: Path) -> list[str]:
    return re.findall(r"\.\./shared/data/(tissue/[^\s]+)", config.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / ".device" / "shared" / "data")
    ap.add_argument("--quality", type=int, default=95)
    ap.add_argument("--configs", nargs="*", type=Path, default=[ROOT / "configs/dense-ca-rgb.yaml"])
    args = ap.parse_args()
    pack_crops("midog21_crops", ["crops.csv", "labels_in_crops.csv"], args.out, args.quality)
    pack_crops("atnorm_md", ["crops.csv"], args.out, args.quality)
    shutil.copytree(SHARED / "icpr2012_patches", args.out / "icpr2012_patches", dirs_exist_ok=True)  # GPU smoke test
    (args.out / "tissue").mkdir(parents=True, exist_ok=True)
    for cfg in args.configs:
        for rel in tissue_in(cfg):
            target = (args.out / rel).with_suffix(".webp")
            if not target.exists():
                webp(SHARED / rel, target, args.quality)
    shutil.copy(SHARED / "README.md", args.out / "README.md")
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"device pack at {args.out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
