"""Item 7: spacing and option bounds."""

from __future__ import annotations

from tests.reliability.harness import DET, GT_2025, PATCH, SVS, TILE, case
from tests.reliability.hostile import _rgb, checkpoint_with, tiff_patched, write_tiff

P = [*DET, "{data}/" + PATCH]
for value in ("1e-9", "0", "-1", "nan", "inf", "50", "1e9"):
    case("7", f"detect --mpp {value}", [*P, "--mpp", value], has=("--mpp",))
case("7", "detect --mpp abc", [*P, "--mpp", "abc"], has=("--mpp",))
case("7", "detect --mpp 20 (x80 upsampling beyond the memory limit)", [*P, "--mpp", "20"], has=("limit",))
case(
    "7",
    "TIFF tag meaning 2.5e-6 µm/px",
    [*DET, "{tmp}/tiny.tif"],
    setup=lambda c: write_tiff(c.tmp / "tiny.tif", _rgb(), mpp=2.5e-6),
    has=("tiny.tif", "not plausible"),
)
case(
    "7",
    "TIFF tag meaning 30 µm/px",
    [*DET, "{tmp}/coarse.tif"],
    setup=lambda c: write_tiff(c.tmp / "coarse.tif", _rgb(), mpp=30),
    has=("coarse.tif", "not plausible"),
)
case(
    "7",
    "TIFF tag 72 dpi (placeholder): asks for --mpp",
    [*DET, "{tmp}/dpi.tif"],
    setup=lambda c: write_tiff(c.tmp / "dpi.tif", _rgb(), resolution=(72, 72), resolutionunit="INCH"),
    has=("dpi.tif", "--mpp"),
)
case(
    "7",
    "TIFF tag 2.5e-6 µm/px overridden by --mpp",
    [*DET, "{tmp}/tiny.tif", "--mpp", "0.25"],
    setup=lambda c: write_tiff(c.tmp / "tiny.tif", _rgb(), mpp=2.5e-6),
    expect="ok",
)
case(
    "7",
    "TIFF with an invalid resolution tag type",
    [*DET, "{tmp}/badtype.tif"],
    setup=lambda c: tiff_patched(c.tmp / "badtype.tif", 282, 0, field_type=99),
    has=("badtype.tif", "--mpp"),
)
case("7", "slide with --mpp 1e-9", ["data", "image", "{data}/" + SVS, "--mpp", "1e-9"], has=("--mpp",))
for opt, value in (
    ("--threads", "-1"),
    ("--threads", "0"),
    ("--threads", "1.5"),
    ("--device", "banana"),
    ("--device", "cuda:7"),
    ("--threshold", "nan"),
    ("--threshold", "1.5"),
    ("--threshold", "-0.1"),
    ("--tile", "0"),
    ("--tile", "-64"),
    ("--tile", "100000"),
    ("--batch-size", "0"),
    ("--backend", "banana"),
):
    case("7", f"detect {opt} {value}", [*P, "--mpp", "0.25", opt, value], has=(opt,))
case(
    "7",
    "checkpoint threshold 'abc'",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"threshold": "abc"}),
    has=("c.pt", "threshold"),
)
case(
    "7",
    "checkpoint threshold NaN",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"threshold": float("nan")}),
    has=("c.pt", "threshold"),
)
case(
    "7",
    "checkpoint spacing 0",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"mpp": 0}),
    has=("c.pt", "spacing"),
)
case(
    "7",
    "checkpoint spacing 'x'",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"mpp": "x"}),
    has=("c.pt",),
)
case(
    "7",
    "checkpoint of an unknown model name",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", config={"name": "resnet9000"}),
    has=("c.pt", "resnet9000"),
)
case(
    "7",
    "checkpoint with a bad model setting",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", config={"width": -3}),
    has=("c.pt",),
)
case(
    "7",
    "checkpoint without weights",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", drop="state_dict"),
    has=("c.pt",),
)
case(
    "7",
    "checkpoint with an unknown interpolation",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"interpolation": "spline"}),
    has=("c.pt", "interpolation"),
)
case(
    "7",
    "model summary of a checkpoint with threshold 'abc'",
    ["model", "summary", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"threshold": "abc"}),
    has=("c.pt",),
)
for args, opt in (
    (
        ["data", "split", "{data}/annotations/MIDOG.json", "--out", "{tmp}/s.json", "--val-fraction", "1.5"],
        "--val-fraction",
    ),
    (
        ["data", "split", "{data}/annotations/MIDOG.json", "--out", "{tmp}/s.json", "--val-fraction", "nan"],
        "--val-fraction",
    ),
    (["data", "split", "{data}/annotations/MIDOG.json", "--out", "{tmp}/s.json", "--seed", "-1"], "--seed"),
    (["data", "image", "{data}/" + SVS, "--target-mpp", "0"], "--target-mpp"),
    (["stain", "unmix", "{data}/" + TILE, "--out", "{tmp}/u", "--beta", "0"], "--beta"),
    (["stain", "unmix", "{data}/" + TILE, "--out", "{tmp}/u", "--alpha", "60"], "--alpha"),
    (["stain", "unmix", "{data}/" + TILE, "--out", "{tmp}/u", "--residual-scale", "-1"], "--residual-scale"),
    (["stain", "vectors", "{data}/" + TILE, "--alpha", "nan"], "--alpha"),
    (["stain", "vectors", "{data}/" + TILE, "--mpp", "1e-9"], "--mpp"),
    (
        ["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--per-image", "0"],
        "--per-image",
    ),
    (["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--sigma-um", "0"], "--sigma-um"),
    (
        ["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--threshold", "nan"],
        "--threshold",
    ),
    (["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--patch", "0"], "--patch"),
    (["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--crop", "100000"], "--crop"),
    (["mine", "residual", "{data}/" + TILE, "--mpp", "50", "--out", "{tmp}/n.csv"], "--mpp"),
    (["mine", "hard", "{tmp}", "--rounds", "0"], "--rounds"),
    (["mine", "hard", "{tmp}", "--drop-quantile", "1"], "--drop-quantile"),
    (["mine", "hard", "{tmp}", "--patience", "0"], "--patience"),
    (["mine", "hard", "{tmp}", "--max-minutes", "-5"], "--max-minutes"),
    (["train", "tiny", "--max-minutes", "0"], "--max-minutes"),
    (["calibrate", "{tmp}", "--limit", "0"], "--limit"),
    (["calibrate", "{tmp}", "--threads", "-2"], "--threads"),
    (["calibrate", "{tmp}", "--device", "banana"], "--device"),
    (["augment", "preview", "--n", "0", "--out", "{tmp}/p.png"], "--n"),
    (["augment", "preview", "--n-aug", "-1", "--out", "{tmp}/p.png"], "--n-aug"),
    (["model", "check", "fast", "--image", "{data}/" + PATCH, "--size", "0"], "--size"),
    (["model", "summary", "fast", "--set", "width=[1"], "--set"),
    (["evaluate", "-t", "{data}/" + GT_2025 + "/ground_truth.json", "-p", "{data}/" + GT_2025, "--mpp", "0"], "--mpp"),
):
    words = [a for a in args[:2] if not a.startswith(("{", "-"))]
    value = args[args.index(opt) + 1]
    case("7", f"{' '.join(words)} {opt} {value}", args, has=(opt,))
case("7", "train --set device=banana", ["train", "tiny", "--set", "device=banana"], has=("device",))
