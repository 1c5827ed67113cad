"""The negative-point table: known negative locations in other images (e.g. residual mining).

CSV columns ``image,x,y,label,score``: ``image`` is a path (a relative one is read relative to
the table's folder), x/y are pixels of that image, ``label`` is ``negative``, ``score`` is the
miner's score. Written by ``mitodet mine residual``, read by training (``data.negatives``).

Paths are written relative to the table's folder, as the user's paths spell them (symbolic links
are not resolved: a table stays valid when the project and its data move together, and shows
no machine-specific absolute paths); both sides normalise ``..`` the same way, by spelling.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from pathlib import Path

from mitodet.errors import MitodetError
from mitodet.io.atomic import write_csv
from mitodet.io.files import csv_errors
from mitodet.schema import NEGATIVE, Point

TABLE_COLUMNS = ["image", "x", "y", "label", "score"]


def write_negative_table(path: str | os.PathLike, rows: Iterable[tuple[str | os.PathLike, float, float, float]]) -> int:
    """Write ``(image path, x, y, score)`` rows (atomically); returns the row count."""
    base = os.path.abspath(Path(path).parent)
    return write_csv(
        path,
        TABLE_COLUMNS,
        ([_relative(image, base), f"{x:.1f}", f"{y:.1f}", NEGATIVE, f"{score:.5f}"] for image, x, y, score in rows),
    )


def _relative(image: str | os.PathLike, base: str) -> str:
    """``image`` relative to the folder ``base``, by spelling (no symbolic link resolved)."""
    absolute = os.path.abspath(image)
    try:
        return Path(os.path.relpath(absolute, base)).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return absolute


def read_negative_table(path: str | os.PathLike) -> dict[str, list[Point]]:
    """Read a negative-point table: {absolute image path: [Point(label=negative)]}, in file order."""
    path = Path(path)
    out: dict[str, list[Point]] = {}
    with csv_errors(path), open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("image", "x", "y") if c not in (reader.fieldnames or [])]
        if missing:
            raise MitodetError(path, f"not a negative table: missing column(s) {', '.join(missing)}")
        for n, row in enumerate(reader, start=2):
            try:
                x, y = float(row["x"]), float(row["y"])
            except (TypeError, ValueError):
                raise MitodetError(path, f"line {n}: x/y not numbers: {row['x']!r}, {row['y']!r}") from None
            if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
                raise MitodetError(path, f"line {n}: bad point ({x}, {y})")
            label = (row.get("label") or NEGATIVE).strip().lower()
            if label != NEGATIVE:
                raise MitodetError(path, f"line {n}: label {label!r} is not 'negative'")
            if not row["image"]:
                raise MitodetError(path, f"line {n}: empty image path")
            image = Path(row["image"])
            image = Path(os.path.abspath(image if image.is_absolute() else path.parent / image))  # ".." by spelling
            out.setdefault(str(image.resolve()), []).append(Point(x, y, NEGATIVE))
    return out
