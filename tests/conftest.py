"""Shared test fixtures: the real data lives beside the project in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# The real data: ../shared/data beside the checkout, or wherever MITODET_DATA points.
SHARED = Path(os.environ.get("MITODET_DATA", ROOT.parent / "shared" / "data"))

# Two xdist workers share 2 cores: one thread each keeps them from fighting.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real data; tests that need it skip with a reason when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real data folder {SHARED} is absent (clone the project beside its shared/ folder: see README.md)")
    return SHARED


def need(path: Path) -> Path:
    """Skip the calling test when a real data file is absent."""
    if not path.exists():
        pytest.skip(f"real data file {path} is absent")
    return path
