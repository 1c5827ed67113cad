"""The table itself: complete, in order, and its generator's markdown."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

from tests.conftest import ROOT
from tests.reliability import MODULES, all_cases, cases_round2
from tests.reliability.harness import ITEMS, Shared, run_case


def _generator():
    spec = importlib.util.spec_from_file_location("reliability_generator", ROOT / "benchmarks" / "reliability.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["reliability_generator"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_cases_cover_the_issue():
    cases = all_cases()
    names = [f"{c.item} {c.name}" for c in cases]
    assert len(cases) >= 280 and len(set(names)) == len(names)
    items = {c.item for c in cases}
    assert {str(i) for i in range(0, 12)} <= items  # every item of issue 12, and the baseline
    assert sum(c.item in ("2", "3", "5") for c in cases) >= 10  # stale results, collisions, stacks
    assert all(c.item in ITEMS for c in cases)


def test_the_table_runs_item_by_item_in_module_order():
    """Each item's cases sit together, items in the order of MODULES (0, 1, ... 11, R2.1 ...)."""
    order = [c.item for c in all_cases()]
    blocks = [item for i, item in enumerate(order) if i == 0 or order[i - 1] != item]
    assert len(blocks) == len(set(blocks))
    round1 = [b for b in blocks if not b.startswith("R2.")]
    assert round1 == [str(i) for i in range(0, 12)] and len(MODULES) == 13
    assert blocks[len(round1) :] == [f"R2.{i}" for i in range(1, 19)]


def test_every_item_of_the_second_round_has_its_case_and_one_more_per_class():
    """Issue 19: each item R2.1-R2.18 has a case, with its class named, and each class has at
    least one case the issue did not list."""
    by_item: dict[str, list] = {}
    for c in all_cases():
        by_item.setdefault(c.item, []).append(c)
    items = cases_round2.ITEMS
    assert all(by_item.get(k) for k in items)
    for cls, label in cases_round2.CLASSES.items():
        cases = [c for k, (c_, _) in items.items() if c_ == cls for c in by_item[k]]
        assert any("not listed" in c.name for c in cases), cls
        assert all(ITEMS[c.item].split(": ")[0].endswith(label) for c in cases)


def test_the_generator_writes_the_table(shared_data):
    gen = _generator()
    by_name = {c.name: c for c in all_cases()}
    with tempfile.TemporaryDirectory() as root:
        shared = Shared(Path(root) / "shared")
        ok = run_case(by_name["--version"], Path(root), shared)
        bad = run_case(by_name["detect --tile 0"], Path(root), shared)
    assert ok.passed and ok.seen.startswith("mitodet ")
    assert bad.passed and bad.seen.startswith("error: --tile:") and "[exit 2]" in bad.seen
    md = gen.write_markdown([ok, bad], 1.0, 2)
    assert "**2 cases: 2 pass, 0 fail.**" in md and md.count("\n| ") == 4  # header, rule, 2 rows
    assert gen.main(["--list", "-k", "bomb"]) == 0
