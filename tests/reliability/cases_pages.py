"""Item 5: multi-page TIFF in detect."""

from __future__ import annotations

import shutil

from tests.reliability.harness import DATA, DET, STACK, Ctx, Result, case, results


def _pages_handled(ctx: Ctx, r: Result) -> str | None:
    n = len(results(ctx.tmp / "out"))
    if r.code == 2 and len([line for line in r.err_lines if line.startswith("error:")]) == 1:
        return None  # refused in one line
    return None if n >= 16 else f"{n} result(s) for 16 pages, with no word about the other pages"


case("5", "16-page TIFF stack", [*DET, "{data}/" + STACK], expect="ok", check=_pages_handled, code=0)
case(
    "5",
    "16-page TIFF stack in a folder",
    [*DET, "{tmp}/in"],
    setup=lambda c: ((c.tmp / "in").mkdir(), shutil.copy(DATA / STACK, c.tmp / "in")),
    expect="ok",
    check=_pages_handled,
)
