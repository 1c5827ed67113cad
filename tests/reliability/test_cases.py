"""Every reliability case as a test: the real CLI, the real data, what the user sees."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.reliability import all_cases, quick_cases
from tests.reliability.harness import Case, Shared, run_case

CASES = all_cases()
QUICK = {id(c) for c in quick_cases(CASES)}


def _id(c: Case) -> str:
    return f"{c.item}-" + re.sub(r"[^A-Za-z0-9.+]+", "-", c.name).strip("-")[:60]


@pytest.fixture(scope="session")
def shared(tmp_path_factory) -> Shared:
    return Shared(Path(tmp_path_factory.mktemp("reliability")) / "shared")


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=_id(c), marks=() if id(c) in QUICK else pytest.mark.reliability_full) for c in CASES]
)
def test_case(case: Case, shared: Shared, tmp_path: Path, shared_data) -> None:
    outcome = run_case(case, tmp_path, shared)
    assert outcome.passed, f"{outcome.reason}; the user sees: {outcome.seen}"
