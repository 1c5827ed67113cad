"""Item 3: output name collisions."""

from __future__ import annotations

import shutil

from tests.reliability.harness import DATA, DET, ICPR, PATCH, Ctx, Result, case, results
from tests.reliability.hostile import _rgb, real_png, write_tiff


def _two(*names: tuple[str, str]):
    def setup(ctx: Ctx) -> None:
        for rel, name in names:
            p = ctx.tmp / "in" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(DATA / rel, p)

    return setup


def _outputs(n: int):
    def check(ctx: Ctx, r: Result) -> str | None:
        got = len(results(ctx.tmp / "out"))
        if "skipped (done" in r.out:
            return "second input reported as skipped"
        return None if got == n else f"{got} result file(s) for {n} inputs"

    return check


case(
    "3",
    "a/x.jpg and b/x.jpg in one run",
    [*DET, "{tmp}/in/a/x.jpg", "{tmp}/in/b/x.jpg", "--mpp", "0.25"],
    setup=_two((PATCH, "a/x.jpg"), (ICPR + "/A00_02_0.jpg", "b/x.jpg")),
    expect="ok",
    check=_outputs(2),
)
case(
    "3",
    "img.jpg and img.png in one folder",
    [*DET, "{tmp}/in", "--mpp", "0.25"],
    setup=lambda c: (_two((PATCH, "img.jpg"))(c), (c.tmp / "in" / "img.png").write_bytes(real_png())),
    expect="ok",
    check=_outputs(2),
)


def _tif_and_tiff(ctx: Ctx) -> None:
    (ctx.tmp / "in").mkdir()
    write_tiff(ctx.tmp / "in" / "x.tif", _rgb())
    write_tiff(ctx.tmp / "in" / "x.tiff", _rgb()[::-1].copy())


case(
    "3",
    "x.tif and x.tiff in one folder",
    [*DET, "{tmp}/in", "--mpp", "0.25"],
    setup=_tif_and_tiff,
    expect="ok",
    check=_outputs(2),
)
