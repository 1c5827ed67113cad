"""Files that ship with the package: the training configs and the bundled weights.

``configs/`` of the source tree ships as ``mitodet/configs/`` (a symlink in the checkout, real
files in a wheel), so a config can be named instead of given as a path: ``mitodet train
default-ca-rgb`` works in a checkout and after ``pip install .`` alike. Paths inside a config
stay relative to the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from mitodet.errors import MitodetError

PACKAGE = Path(__file__).resolve().parent
CONFIGS = PACKAGE / "configs"
WEIGHTS = PACKAGE / "weights"
DEFAULT_MODELS = [WEIGHTS / "default-ca-rgb.pt", WEIGHTS / "default-ca-od.pt"]  # the bundled pair
ATYPICAL_WEIGHTS = WEIGHTS / "atypical.pt"  # the bundled atypical-vs-normal classifier
# What every report says the bundled pair is worth (measured as a new user would, issue #17: 50
# whole breast fields of a lab no training saw, CLI defaults); models given with --model say less.
BUNDLED_QUALITY = "the bundled pair finds 32 % of the mitoses of another lab's fields (precision 0.83, F1 0.46)"


def bundled_configs() -> dict[str, Path]:
    """Name (file stem) -> path of every config shipped with the package."""
    return {p.stem: p for p in sorted(CONFIGS.glob("*.yaml"))} if CONFIGS.is_dir() else {}


def config_path(name_or_path: str | os.PathLike) -> Path:
    """An existing config file as given, else the bundled config of that name (``default-ca-rgb``,
    ``default-ca-rgb.yaml`` or ``configs/default-ca-rgb.yaml``); else a one-line error listing them."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise MitodetError(path, "is a folder, not a config file")
    bundled = bundled_configs()
    stem = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if stem in bundled and (len(path.parts) == 1 or path.parent.name == "configs"):
        return bundled[stem]
    names = ", ".join(bundled) or "none installed"
    raise MitodetError(path, f"config file not found (bundled configs: {names})")
