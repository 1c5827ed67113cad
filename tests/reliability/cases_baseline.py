"""Item 0: the baseline of bad input (the ~100 cases issue 12 found to behave)."""

from __future__ import annotations

import os

import numpy as np

from tests.reliability.harness import DET, GT_2025, PATCH, ROOT, SVS, SVS_NO_MPP, TILE, Ctx, case
from tests.reliability.hostile import _copy, _image, _rgb, _write, eval_inputs, real_png, write_tiff

case("0", "missing input file", [*DET, "{tmp}/nope.jpg", "--mpp", "0.25"], has=("nope.jpg", "not found"))
case("0", "folder without images", [*DET, "{tmp}/empty"], setup=lambda c: (c.tmp / "empty").mkdir(), has=("empty",))
case("0", "zero-byte JPEG", [*DET, "{tmp}/zero.jpg", "--mpp", "0.25"], setup=_write("zero.jpg", b""), has=("zero.jpg",))
case("0", "text file named .tif", [*DET, "{tmp}/t.tif"], setup=_write("t.tif", "hello"), has=("t.tif",))
case(
    "0",
    "truncated JPEG (half a real patch)",
    [*DET, "{tmp}/half.jpg", "--mpp", "0.25"],
    setup=_copy(PATCH, "half.jpg", 0.5),
    has=("half.jpg",),
)
case(
    "0",
    "truncated TIFF (half a real tile)",
    [*DET, "{tmp}/half.tif", "--mpp", "0.25"],
    setup=_copy(TILE, "half.tif", 0.5),
    has=("half.tif",),
)
case(
    "0",
    "PNG content named .jpg",
    [*DET, "{tmp}/png.jpg", "--mpp", "0.25"],
    setup=lambda c: (c.tmp / "png.jpg").write_bytes(real_png()),
    expect="ok",
)


def _pil(name: str, mode: str):
    def setup(ctx: Ctx) -> None:
        from PIL import Image

        Image.fromarray(_rgb()).convert(mode).save(ctx.tmp / name)

    return setup


case("0", "CMYK JPEG", [*DET, "{tmp}/cmyk.jpg", "--mpp", "0.25"], setup=_pil("cmyk.jpg", "CMYK"), has=("CMYK",))
case(
    "0",
    "16-bit PNG with values above 8 bits",
    [*DET, "{tmp}/i16.png", "--mpp", "0.25"],
    setup=_image("i16.png", lambda: _rgb()[..., 0].astype(np.uint16) * 3),
    has=("i16.png",),
)
case("0", "1-bit PNG", [*DET, "{tmp}/bw.png", "--mpp", "0.25"], setup=_pil("bw.png", "1"), has=("1-bit",))
case(
    "0",
    "PNG with varying alpha",
    [*DET, "{tmp}/rgba.png", "--mpp", "0.25"],
    setup=_image("rgba.png", lambda: np.dstack([_rgb(), np.tile(np.arange(200, dtype=np.uint8), (200, 1))])),
    has=("alpha",),
)
case(
    "0",
    "float32 TIFF",
    [*DET, "{tmp}/f.tif", "--mpp", "0.25"],
    setup=lambda c: write_tiff(c.tmp / "f.tif", _rgb().astype(np.float32)),
    has=("floating",),
)
case(
    "0",
    "grayscale PNG is read (gray repeated)",
    [*DET, "{tmp}/g.png", "--mpp", "0.25"],
    setup=_pil("g.png", "L"),
    expect="ok",
)
case("0", "palette PNG is read", [*DET, "{tmp}/p.png", "--mpp", "0.25"], setup=_pil("p.png", "P"), expect="ok")
case(
    "0",
    "PNG without --mpp",
    [*DET, "{tmp}/x.png"],
    setup=lambda c: (c.tmp / "x.png").write_bytes(real_png()),
    has=("x.png", "--mpp"),
)
case("0", "TIFF without spacing tags", [*DET, "{data}/" + TILE], has=("--mpp",))
case("0", "slide without stored spacing (SVS)", [*DET, "{data}/" + SVS_NO_MPP], has=("--mpp",))
case("0", "truncated SVS", [*DET, "{tmp}/cut.svs", "--mpp", "0.5"], setup=_copy(SVS, "cut.svs", 0.3), has=("cut.svs",))
case(
    "0",
    "random bytes named .svs",
    [*DET, "{tmp}/r.svs", "--mpp", "0.5"],
    setup=_write("r.svs", os.urandom(5000)),
    has=("r.svs",),
)
case("0", "--model file missing", [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/no.pt"], has=("no.pt",))
case(
    "0",
    "--model is a text file",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/t.pt"],
    setup=_write("t.pt", "not a model"),
    has=("t.pt",),
)
case(
    "0",
    "--model is a zip that is not a checkpoint",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/z.pt"],
    setup=lambda c: __import__("zipfile").ZipFile(c.tmp / "z.pt", "w").writestr("a.txt", "x"),
    has=("z.pt",),
)
case("0", "--model is a folder", [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}"], has=("not found",))
case(
    "0",
    "three --model",
    [
        *DET,
        "{data}/" + PATCH,
        "--mpp",
        "0.25",
        "-m",
        "{repo}/mitodet/weights/default-ca-rgb.pt",
        "-m",
        "{repo}/mitodet/weights/default-ca-rgb.pt",
        "-m",
        "{repo}/mitodet/weights/default-ca-od.pt",
    ],
    has=("two",),
)
case(
    "0",
    "truncated checkpoint",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "-m", "{tmp}/cut.pt"],
    setup=lambda c: (c.tmp / "cut.pt").write_bytes((ROOT / "mitodet/weights/default-ca-rgb.pt").read_bytes()[:50000]),
    has=("cut.pt",),
)
case(
    "0",
    "--grand-challenge without an image",
    ["detect", "--grand-challenge", "--gc-input", "{tmp}/in", "--gc-output", "{tmp}/o"],
    setup=lambda c: (c.tmp / "in" / "images").mkdir(parents=True),
    has=("exactly one",),
)
case("0", "no input and no --grand-challenge", ["detect"], has=("INPUT",))
case("0", "data stats: missing file", ["data", "stats", "{tmp}/nope.json"], has=("nope.json",))
case(
    "0",
    "data stats: invalid JSON",
    ["data", "stats", "{tmp}/bad.json"],
    setup=_write("bad.json", "{not json"),
    has=("bad.json",),
)
case(
    "0",
    "data stats: truncated MIDOG.json",
    ["data", "stats", "{tmp}/MIDOG.json"],
    setup=_copy("annotations/MIDOG.json", "MIDOG.json", 0.5),
    has=("MIDOG.json",),
)
case(
    "0",
    "data stats: foreign JSON",
    ["data", "stats", "{tmp}/f.json"],
    setup=_write("f.json", '{"a": [1, 2]}'),
    has=("f.json",),
)
case(
    "0",
    "data stats: unknown --by key",
    ["data", "stats", "{data}/annotations/MIDOG.json", "--by", "colour"],
    has=("colour",),
)
case(
    "0",
    "data image: PNG without --mpp",
    ["data", "image", "{tmp}/x.png"],
    setup=lambda c: (c.tmp / "x.png").write_bytes(real_png()),
    has=("--mpp",),
)
case(
    "0",
    "evaluate: truth file missing",
    ["evaluate", "-t", "{tmp}/nope.json", "-p", "{tmp}", "-o", "{tmp}/ev"],
    has=("nope.json",),
)
case(
    "0",
    "evaluate: truth not JSON",
    ["evaluate", "-t", "{tmp}/truth.json", "-p", "{tmp}/preds", "-o", "{tmp}/ev"],
    setup=lambda c: eval_inputs(c, raw_truth="{oops"),
    has=("truth.json",),
)
case(
    "0",
    "evaluate: pixels in --strict",
    [
        "evaluate",
        "-t",
        "{data}/" + GT_2025 + "/ground_truth.json",
        "-p",
        "{data}/" + GT_2025 + "/predictions.json",
        "-o",
        "{tmp}/ev",
        "--strict",
    ],
    has=("millimetres",),
)
case(
    "0",
    "stain unmix: image without tissue",
    ["stain", "unmix", "{tmp}/white.png", "--out", "{tmp}/u"],
    setup=_image("white.png", lambda: np.full((200, 200, 3), 250, np.uint8)),
    has=("white.png",),
)
case("0", "stain vectors: missing file", ["stain", "vectors", "{tmp}/nope.tif"], has=("nope.tif",))
case("0", "train: config missing", ["train", "{tmp}/nope.yaml"], has=("nope.yaml",))
case(
    "0",
    "train: config not YAML",
    ["train", "{tmp}/bad.yaml"],
    setup=_write("bad.yaml", "a: [1, 2\n"),
    has=("bad.yaml",),
)
case(
    "0",
    "train: unknown setting",
    ["train", "{tmp}/c.yaml"],
    setup=_write("c.yaml", "name: x\nbanana: 1\n"),
    has=("banana",),
)
case("0", "train --resume of a folder that is not a run", ["train", "--resume", "{tmp}"], has=("config.yaml",))
case("0", "calibrate: not a run folder", ["calibrate", "{tmp}"], has=("not a run folder",))
case("0", "mine hard: not a run folder", ["mine", "hard", "{tmp}"], has=("not a finished training run",))
case("0", "model summary: unknown name", ["model", "summary", "banana"], has=("banana",))
case("0", "model check: image missing", ["model", "check", "fast", "--image", "{tmp}/nope.png"], has=("nope.png",))
case(
    "0",
    "augment preview: unknown protocol",
    ["augment", "preview", "--protocol", "rgb", "--out", "{tmp}/p.png"],
    cwd="repo",
    has=("--protocol",),
)
