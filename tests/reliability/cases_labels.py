"""Item 8: mine residual --labels."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.cases_evaluate import _warned
from tests.reliability.harness import TILE, case
from tests.reliability.hostile import _write, real_png

MR = ["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--labels"]
TILE_NAME = Path(TILE).name
case(
    "8",
    "--labels is a binary file (a PNG named .csv)",
    [*MR, "{tmp}/l.csv"],
    setup=lambda c: (c.tmp / "l.csv").write_bytes(real_png()),
    has=("l.csv",),
)
case(
    "8",
    "--labels with a NaN coordinate",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", f"image,x,y,label\n{TILE_NAME},nan,3,mitotic figure\n"),
    has=("l.csv", "line 2"),
)
case(
    "8",
    "--labels with an inf coordinate",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", f"image,x,y\n{TILE_NAME},5,inf\n"),
    has=("l.csv", "line 2"),
)
case(
    "8",
    "--labels with a text coordinate",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", f"image,x,y\n{TILE_NAME},five,3\n"),
    has=("l.csv",),
)
case(
    "8",
    "--labels with a missing coordinate",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", f"image,x,y\n{TILE_NAME},5\n"),
    has=("l.csv",),
)
case(
    "8",
    "--labels without an image column",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", "x,y\n5,3\n"),
    has=("l.csv", "image"),
)
case(
    "8",
    "--labels with NUL bytes",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", b"image,x,y\n\x00\x00,1,2\n"),
    has=("l.csv",),
)
case(
    "8",
    "--labels folder with a NaN in a GeoJSON",
    [*MR, "{tmp}/lab"],
    setup=lambda c: (
        (c.tmp / "lab").mkdir(),
        (c.tmp / "lab" / (Path(TILE).stem + ".geojson")).write_text(
            '{"type": "FeatureCollection", "features": [{"type": "Feature", '
            '"geometry": {"type": "Point", "coordinates": [NaN, 2]}, "properties": {}}]}'
        ),
    ),
    has=(".geojson",),
)
case("8", "--labels missing", [*MR, "{tmp}/nope.csv"], has=("nope.csv",))
case(
    "8",
    "--labels matching no image: warned",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", "image,x,y\nother.tif,5,3\n"),
    expect="ok",
    check=_warned("--labels"),
)
