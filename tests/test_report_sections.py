"""benchmarks/report_models.py keeps the sections whose run folders are gone from the previous report."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _report():
    spec = importlib.util.spec_from_file_location("report_models", ROOT / "benchmarks" / "report_models.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


OLD = """### ICPR 2012

| model | F1 |
|---|---|
| a | 0.5 |

### Ablations: one change each against the reference recipe (dense, CA-RGB)

| run | change |
|---|---|
| ca-rgb | reference |

### Training time of the bundled pair
"""


def test_a_section_is_kept_with_its_note_once():
    r = _report()
    kept = r.kept_section(OLD, "### Ablations")
    assert kept[1].startswith("### Ablations") and kept[3] == r.KEPT
    assert "| ca-rgb | reference |" in kept and "### Training time of the bundled pair" not in kept
    again = r.kept_section("\n".join(kept), "### Ablations")  # regenerated twice: one note
    assert again == kept
    assert r.kept_section(OLD, "### Leave-one-scanner-out") == []


def test_history_sections_without_runs_come_from_the_old_report(tmp_path):
    r = _report()
    lines = r._history_sections({}, tmp_path / "gpu", tmp_path / "cpu", OLD)
    assert r.KEPT in lines and "| ca-rgb | reference |" in lines
    assert not any(t.startswith("### Hard-negative") for t in lines)  # not in the old report: left out
