"""One entry point for every data source: an annotation file or a crop/patch/tile folder."""

from __future__ import annotations

import os
from pathlib import Path

from mitodet.data.crops import load_atnorm_crops, load_icpr2012, load_midog21_crops, load_tissue
from mitodet.data.fields import load_mitos_atypia14
from mitodet.data.midog import load_annotations
from mitodet.errors import MitodetError
from mitodet.schema import Dataset

# The domain key(s) each source is naturally grouped by (first = main table).
NATURAL_KEYS = {
    "MIDOG 2021": ("scanner",),
    "MIDOG++": ("tumor_type", "scanner"),
    "MIDOG 2022": ("tumor_type", "scanner"),
    "MIDOG 2021 crops": ("scanner",),
    "AtNorM-MD crops": ("atypical",),
    "ICPR 2012": ("source_image",),
    "MITOS-ATYPIA-14 fields": ("scanner",),
}


def load_any(path: str | os.PathLike) -> Dataset:
    """Load an annotation file (MIDOG.json, MIDOG++.json, MIDOG 2022 CSV) or a data folder
    (midog21_crops, atnorm_md, mitos_atypia14, icpr2012_patches, tissue, tissue/monuseg, tissue/ccmct)."""
    path = Path(path)
    if not path.exists():
        raise MitodetError(path, "file or folder not found")
    if path.is_file():
        return load_annotations(path)
    if (path / "crops.csv").exists() and (path / "labels_in_crops.csv").exists():
        return load_midog21_crops(path)
    if (path / "crops.csv").exists() and (path / "images").is_dir():
        return load_atnorm_crops(path)
    if (path / "frames").is_dir() and (path / "labels.csv").exists():
        return load_mitos_atypia14(path)
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return load_icpr2012(path)
    if (path / "monuseg_index.csv").exists() or (path / "ccmct_index.csv").exists():
        return load_tissue(path, "all")
    if path.name in ("monuseg", "ccmct") and (path.parent / f"{path.name}_index.csv").exists():
        return load_tissue(path.parent, path.name)
    raise MitodetError(path, "not a known data folder (expected midog21_crops, icpr2012_patches or tissue)")


def natural_keys(ds: Dataset) -> tuple[str, ...]:
    """Domain keys to group this dataset by by default."""
    if ds.name.startswith("tissue"):
        return ("source", "organ")
    return NATURAL_KEYS.get(ds.name, ("scanner",))
