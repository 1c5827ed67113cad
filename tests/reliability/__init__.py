"""The reliability table (issues 12 and 19) as a test suite.

Each case runs the real ``mitodet`` command on real data, or on hostile files built from real
pieces, and checks what a person sees. Cases are declared by item, one module each
(``cases_baseline`` is item 0, ``cases_code`` item 1, ... ``cases_round2`` the second round);
``harness`` runs one case and ``hostile`` builds the files.

    pytest tests/reliability                  # one quick case per item (the default suite)
    pytest tests/reliability --reliability    # every case (~20 min on 2 cores)
    python benchmarks/reliability.py          # every case -> docs/reliability.md
"""

from __future__ import annotations

import importlib

from tests.reliability.harness import CASES, ITEMS, Case

#: In table order; each module imports helpers only from the ones before it.
MODULES = (
    "cases_baseline",
    "cases_code",
    "cases_stale",
    "cases_collisions",
    "cases_bombs",
    "cases_pages",
    "cases_evaluate",
    "cases_spacing",
    "cases_labels",
    "cases_leftovers",
    "cases_interface",
    "cases_formats",
    "cases_round2",
)


def all_cases() -> list[Case]:
    """Every case, in table order (declaring them once; later calls return the same list)."""
    for name in MODULES:
        importlib.import_module(f"tests.reliability.{name}")
    from tests.reliability.cases_round2 import item_labels

    ITEMS.update(item_labels())
    return CASES


def quick_cases(cases: list[Case]) -> list[Case]:
    """One case per item, what the default test suite runs: the item's first bad-input case run
    as a plain command (these fail fast), else its first case."""
    picks: dict[str, Case] = {}
    for c in cases:
        if c.item not in picks or (not _cheap(picks[c.item]) and _cheap(c)):
            picks[c.item] = c
    return [c for c in cases if picks[c.item] is c]


def _cheap(c: Case) -> bool:
    return c.expect == "error" and c.run is None
