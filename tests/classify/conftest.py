"""Real labelled crops in small doses: a few atypical and normal crops of each source."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import need


def pick(root: Path, n: int, column: str = "atypical") -> dict[bool, list[Path]]:
    """The first ``n`` atypical and ``n`` normal crops listed in ``root/crops.csv``."""
    out: dict[bool, list[Path]] = {True: [], False: []}
    with open(need(root / "crops.csv"), newline="") as fh:
        for r in csv.DictReader(fh):
            a = r[column].strip().lower() in ("true", "1")
            if len(out[a]) < n:
                out[a].append(root / r["file"])
    return out


@pytest.fixture(scope="session")
def atnorm_crops(shared_data) -> dict[bool, list[Path]]:
    return pick(shared_data / "atnorm_md", 12)


@pytest.fixture(scope="session")
def midog_crops(shared_data) -> dict[bool, list[Path]]:
    return pick(shared_data / "midog21_crops", 12)
