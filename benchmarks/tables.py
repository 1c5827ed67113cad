"""Shared by the benchmarks: print rows as a table and write them to CSV (atomically)."""

from __future__ import annotations

from pathlib import Path

from mitodet.io.atomic import write_csv


def show_and_write(rows: list[dict], out: Path) -> None:
    """Print ``rows`` (columns of the first) as a ``|`` table, then write them to ``out``."""
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r.get(c, "")) for c in cols))
    write_csv(out, cols, rows)
    print(f"wrote {out}")
