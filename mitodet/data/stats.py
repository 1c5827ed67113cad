"""Per-domain counts of images, mitotic figures and imposters."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from mitodet.schema import Dataset


@dataclass
class DomainCount:
    domain: str
    images: int = 0
    labelled: int = 0
    mitoses: int = 0
    imposters: int = 0


def domain_counts(ds: Dataset, key: str, ids: Iterable[str] | None = None) -> list[DomainCount]:
    """One row per value of ``domain[key]`` (sorted by name) and a final "total" row."""
    keep = None if ids is None else set(ids)
    rows: dict[str, DomainCount] = {}
    total = DomainCount("total")
    for im in ds:
        if keep is not None and im.id not in keep:
            continue
        name = im.domain.get(key, "unknown")
        row = rows.setdefault(name, DomainCount(name))
        for r in (row, total):
            r.images += 1
            r.labelled += int(im.labelled)
            r.mitoses += len(im.mitoses)
            r.imposters += len(im.imposters)
    return [rows[k] for k in sorted(rows)] + [total]


def known_keys(ds: Dataset) -> list[str]:
    """Domain keys present in this dataset."""
    keys: dict[str, None] = defaultdict(lambda: None)
    for im in ds:
        for k in im.domain:
            keys[k]
    return list(keys)
