"""Shared test fixtures: the real data lives beside the project in ../shared/data."""

from __future__ import annotations

import os
import warnings
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


@pytest.fixture
def cli(capsys, monkeypatch):
    """``mitodet ARGS`` run in this process as the console entry point runs it (one-line errors,
    exit codes, quieted third parties), at 80 columns -> (exit code, stdout, stderr)."""
    from mitodet.cli.main import run

    monkeypatch.setenv("COLUMNS", "80")

    def call(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        with warnings.catch_warnings():  # run() sets the warning filters of a CLI process
            try:
                run([str(a) for a in args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def one_error_line(code: int, err: str, *words: str) -> str:
    """Assert the CLI's answer to bad input: exit 2 and exactly one ``error:`` line (besides notes
    and detect's "N of M input(s) failed") containing ``words``; returns that line."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    others = [
        line for line in lines if not line.startswith(("error: ", "note: ")) and not line.endswith("input(s) failed")
    ]
    assert code == 2, err
    assert len(errors) == 1 and not others, err
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def pytest_addoption(parser):
    parser.addoption(
        "--reliability", action="store_true", help="run every case of tests/reliability (~20 min), not one per item"
    )
