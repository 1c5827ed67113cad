"""The reliability table's generator (benchmarks/reliability.py) stays runnable and complete."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

from tests.conftest import ROOT


def _module():
    spec = importlib.util.spec_from_file_location("reliability", ROOT / "benchmarks" / "reliability.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["reliability"] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


def test_cases_cover_the_issue():
    rel = _module()
    names = [f"{c.item} {c.name}" for c in rel.CASES]
    assert len(rel.CASES) >= 136 and len(set(names)) == len(names)
    items = {c.item for c in rel.CASES}
    assert {str(i) for i in range(1, 12)} <= items  # every item of issue 12
    assert sum(c.item in ("2", "3", "5") for c in rel.CASES) >= 10  # stale results, collisions, stacks


def test_every_item_of_the_second_round_has_its_case_and_one_more_per_class():
    """Issue 19: each item R2.1-R2.18 has a case, with its class named, and each class has at
    least one case the issue did not list."""
    rel = _module()
    by_item: dict[str, list] = {}
    for c in rel.CASES:
        by_item.setdefault(c.item, []).append(c)
    items = rel.ROUND2.ITEMS
    assert sorted(items, key=lambda k: int(k.split(".")[1])) == [f"R2.{i}" for i in range(1, 19)]
    assert all(by_item.get(k) for k in items)
    for cls, label in rel.ROUND2.CLASSES.items():
        cases = [c for k, (c_, _) in items.items() if c_ == cls for c in by_item[k]]
        assert any("not listed" in c.name for c in cases), cls
        assert all(rel.ITEMS[c.item].split(": ")[0].endswith(label) for c in cases)


def test_a_case_runs_end_to_end(shared_data):
    rel = _module()
    with tempfile.TemporaryDirectory() as root:
        shared = rel.Shared(Path(root) / "shared")
        by_name = {c.name: c for c in rel.CASES}
        ok = rel.run_case(by_name["--version"], Path(root), shared)
        bad = rel.run_case(by_name["detect --tile 0"], Path(root), shared)
    assert ok.passed and ok.seen.startswith("mitodet ")
    assert bad.passed and bad.seen.startswith("error: --tile:") and "[exit 2]" in bad.seen
    md = rel.write_markdown([ok, bad], 1.0, 2)
    assert "**2 cases: 2 pass, 0 fail.**" in md and md.count("\n| ") == 4  # header, rule, 2 rows
