"""Item 4: decompression bombs and huge images."""

from __future__ import annotations

import shutil

import numpy as np

from tests.reliability.harness import DATA, DET, PATCH, Ctx, Result, case
from tests.reliability.hostile import _write, jpeg_claiming, png_claiming, tiff_claiming, tile_pixels


def _bomb(name: str = "bomb.png", w: int = 100_000, h: int = 100_000):
    return _write(name, lambda: png_claiming(w, h))


case(
    "4",
    "PNG header claiming 100000x100000 px",
    [*DET, "{tmp}/bomb.png", "--mpp", "0.25"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)


def _bomb_folder(ctx: Ctx) -> None:
    (ctx.tmp / "in").mkdir()
    (ctx.tmp / "in" / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    shutil.copy(DATA / PATCH, ctx.tmp / "in" / "a.jpg")


def _bomb_folder_check(ctx: Ctx, r: Result) -> str | None:
    if not (ctx.tmp / "out" / "a.mitotic-figures.json").is_file():
        return "the good file was not done"
    return None if any("a.jpg" in line for line in r.out_lines) else "no result line for the good file"


case(
    "4",
    "folder with a bomb and a good image: the good one is done",
    [*DET, "{tmp}/in", "--mpp", "0.25"],
    setup=_bomb_folder,
    has=("bomb.png",),
    check=_bomb_folder_check,
)
case(
    "4",
    "PNG header just above the limit (12000x12001): no Pillow warning",
    [*DET, "{tmp}/big.png", "--mpp", "0.25"],
    setup=_bomb("big.png", 12000, 12001),
    has=("big.png", "too large"),
)
case(
    "4",
    "PNG header at the limit (12000x12000), truncated data",
    [*DET, "{tmp}/edge.png", "--mpp", "0.25"],
    setup=_bomb("edge.png", 12000, 12000),
    has=("edge.png",),
)


def _real_12k(ctx: Ctx) -> None:
    from PIL import Image

    tile = tile_pixels(1000)
    Image.fromarray(np.tile(tile, (12, 12, 1))).save(ctx.tmp / "real12k.png", compress_level=1)


def _no_pillow_warning(ctx: Ctx, r: Result) -> str | None:
    return "Pillow's warning shown" if "DecompressionBomb" in r.err else None


case(
    "4",
    "real 12000x12000 PNG: read without Pillow's warning",
    ["data", "image", "{tmp}/real12k.png", "--mpp", "0.25"],
    setup=_real_12k,
    expect="ok",
    check=_no_pillow_warning,
    timeout=300,
)
case(
    "4",
    "JPEG header claiming 60000x60000 px",
    [*DET, "{tmp}/bomb.jpg", "--mpp", "0.25"],
    setup=_write("bomb.jpg", lambda: jpeg_claiming(60000, 60000)),
    has=("bomb.jpg", "too large"),
)
case(
    "4",
    "TIFF header claiming 100000x100000 px",
    [*DET, "{tmp}/bomb.tif"],
    setup=lambda c: tiff_claiming(c.tmp / "bomb.tif", 100_000, 100_000),
    has=("bomb.tif",),
)
case(
    "4",
    "TIFF header claiming 12001x12000 px (read whole)",
    ["stain", "vectors", "{tmp}/bomb.tif"],
    setup=lambda c: tiff_claiming(c.tmp / "bomb.tif", 12001, 12000),
    has=("bomb.tif",),
)
case(
    "4", "stain vectors: PNG bomb", ["stain", "vectors", "{tmp}/bomb.png"], setup=_bomb(), has=("bomb.png", "too large")
)
case(
    "4",
    "stain unmix: PNG bomb",
    ["stain", "unmix", "{tmp}/bomb.png", "--out", "{tmp}/u"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)
case(
    "4",
    "mine residual: PNG bomb",
    ["mine", "residual", "{tmp}/bomb.png", "--mpp", "0.25", "--out", "{tmp}/n.csv"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)
case(
    "4",
    "model check: PNG bomb",
    ["model", "check", "fast", "--image", "{tmp}/bomb.png"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)
case(
    "4",
    "data image: PNG bomb",
    ["data", "image", "{tmp}/bomb.png", "--mpp", "0.25"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)
case(
    "4",
    "grand-challenge mode: TIFF bomb",
    ["detect", "--grand-challenge", "--gc-input", "{tmp}/in", "--gc-output", "{tmp}/o"],
    setup=lambda c: (
        (c.tmp / "in" / "images").mkdir(parents=True),
        tiff_claiming(c.tmp / "in" / "images" / "x.tif", 100_000, 100_000),
    ),
    has=("x.tif",),
)
