"""``--reliability`` (declared in tests/conftest.py) runs every case of the table; without it, one case per item."""

from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reliability"):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("reliability_full") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
