"""Item 2: stale or mixed results (resume, changed inputs, partial slides)."""

from __future__ import annotations

import shutil

from tests.reliability.harness import DATA, DET, ICPR, PATCH, SVS, Ctx, Result, case


def _first_detect(*extra: str):
    def setup(ctx: Ctx) -> None:
        r = ctx.run(["detect", DATA / PATCH, "--mpp", "0.25", "--out", ctx.tmp / "out", *extra])
        if r.code != 0:
            raise RuntimeError(r.err)

    return setup


def _recomputed(ctx: Ctx, r: Result) -> str | None:
    return "old result reused (skipped)" if "skipped (done" in r.out + r.err else None


case(
    "2",
    "rerun with another --threshold",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--threshold", "0.99"],
    setup=_first_detect(),
    expect="ok",
    check=_recomputed,
)
case(
    "2",
    "rerun with another --mpp",
    [*DET, "{data}/" + PATCH, "--mpp", "0.3"],
    setup=_first_detect(),
    expect="ok",
    check=_recomputed,
)
case(
    "2",
    "rerun with another model",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "-m", "{repo}/mitodet/weights/default-ca-od.pt"],
    setup=_first_detect(),
    expect="ok",
    check=_recomputed,
)
case(
    "2",
    "rerun with another backend",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--backend", "torch"],
    setup=_first_detect(),
    expect="ok",
    check=_recomputed,
)


def _changed_input(ctx: Ctx) -> None:
    shutil.copy(DATA / PATCH, ctx.tmp / "img.jpg")
    ctx.run(["detect", ctx.tmp / "img.jpg", "--mpp", "0.25", "--out", ctx.tmp / "out"])
    shutil.copy(DATA / ICPR / "A00_02_0.jpg", ctx.tmp / "img.jpg")


case(
    "2",
    "rerun after the input file changed",
    [*DET, "{tmp}/img.jpg", "--mpp", "0.25"],
    setup=_changed_input,
    expect="ok",
    check=_recomputed,
)


def _slide_partial(content: str):
    def setup(ctx: Ctx) -> None:
        (ctx.tmp / "out").mkdir()
        (ctx.tmp / "out" / "CMU-1-Small-Region.partial.json").write_text(content)

    return setup


def _no_planted(ctx: Ctx, r: Result) -> str | None:
    f = ctx.tmp / "out" / "CMU-1-Small-Region.csv"
    if f.is_file() and "4242.00" in f.read_text():
        return "planted partial state trusted (a fake detection in the result)"
    return None


# the slide read as if at 0.1 µm/px: 888x1187 px at the model's 0.25, one region, seconds to detect
SLIDE = [*DET, "{data}/" + SVS, "--mpp", "0.1", "-m", "{repo}/mitodet/weights/default-ca-rgb.pt"]
case(
    "2",
    "planted *.partial.json of a slide is trusted",
    SLIDE,
    setup=_slide_partial('{"0,0": [[4242, 1000, 0.99, "mitotic figure"]]}'),
    expect="ok",
    check=_no_planted,
    timeout=300,
)
case("2", "malformed *.partial.json (a list)", SLIDE, setup=_slide_partial("[1, 2, 3]"), expect="ok", timeout=300)
case(
    "2",
    "malformed *.partial.json (bad region values)",
    SLIDE,
    setup=_slide_partial('{"0,0": [["x"]]}'),
    expect="ok",
    timeout=300,
)
