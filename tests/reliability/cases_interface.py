"""Item 10: interface habits (help, version, optional backends, the wheel)."""

from __future__ import annotations

import csv

from tests.reliability.cases_spacing import P
from tests.reliability.harness import DATA, PATCH, ROOT, Ctx, Result, case, run_cli
from tests.reliability.hostile import real_png

case(
    "10",
    "--overlay / --no-overlay are flags",
    [*P, "--mpp", "0.25", "--overlay", "--no-overlay", "--overlay"],
    expect="ok",
    check=lambda c, r: None if (c.tmp / "out" / "A00_01_0.overlay.png").is_file() else "no overlay written",
)
case(
    "10", "--overlay true (a value after a flag)", [*P, "--mpp", "0.25", "--overlay", "true"], has=("true", "--overlay")
)
case(
    "10",
    "--version",
    ["--version"],
    expect="ok",
    check=lambda c, r: None if r.out.startswith("mitodet ") else "no version",
)
case("10", "-h on the root", ["-h"], expect="ok", check=lambda c, r: None if "Usage: mitodet" in r.out else "no usage")
case(
    "10",
    "-h on a subcommand",
    ["mine", "residual", "-h"],
    expect="ok",
    check=lambda c, r: None if "--labels" in r.out else "no options shown",
)
case(
    "10",
    "python -m mitodet",
    [],
    run=lambda c: run_cli([], c.tmp, python_args=["-m", "mitodet", "--version"]),
    expect="ok",
)


def _all_help(ctx: Ctx) -> Result:
    cmds = [
        [],
        ["detect"],
        ["calibrate"],
        ["evaluate"],
        ["train"],
        ["data"],
        ["data", "stats"],
        ["data", "split"],
        ["data", "image"],
        ["model"],
        ["model", "list"],
        ["model", "summary"],
        ["model", "export"],
        ["model", "check"],
        ["augment"],
        ["augment", "preview"],
        ["stain"],
        ["stain", "unmix"],
        ["stain", "vectors"],
        ["mine"],
        ["mine", "residual"],
        ["mine", "hard"],
    ]
    out, err, code = [], [], 0
    for c in cmds:
        r = run_cli([*c, "--help"], ctx.tmp)
        code = code or r.code
        bad = [
            line
            for line in r.out_lines
            if "…" in line
            or "<bool>" in line
            or len(line) > 80
            or (line.rstrip().endswith("...") and not line.startswith("Usage") and "..." not in line.split()[0])
        ]
        out += [f"{' '.join(c) or 'mitodet'}: {line.strip()}" for line in bad]
        err += r.err_lines
    summary = out or [f"{len(cmds)} help texts read: none cut, no '<bool>', every line <= 80 columns"]
    return Result(code, "\n".join(summary), "\n".join(err), 0.0)


case(
    "10",
    "every --help at 80 columns in a pipe: nothing cut, no '<bool>'",
    [],
    run=_all_help,
    expect="ok",
    check=lambda c, r: None if "help texts read" in r.out else f"cut, too wide or <bool>: {r.out_lines[0]}",
)
case(
    "10",
    "augment preview as the README shows it, in a fresh checkout (no runs/)",
    ["augment", "preview", "--protocol", "both", "--out", "{tmp}/grid.png"],
    cwd="repo",
    expect="ok",
    timeout=300,
)


def _no_onnx(ctx: Ctx) -> Result:
    code = (
        "import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
        "from mitodet.cli.main import run\n"
        f"run(['model', 'export', '{ROOT}/mitodet/weights/default-ca-rgb.pt', '--onnx', '{ctx.tmp}/m.onnx'])\n"
    )
    return run_cli([], ctx.tmp, python_args=["-c", code])


case("10", "model export --onnx without onnx installed: names the extra", [], run=_no_onnx, has=("mitodet[export]",))


def _no_onnxruntime(ctx: Ctx) -> Result:
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from mitodet.cli.main import run\n"
        f"run(['detect', '{DATA / PATCH}', '--mpp', '0.25', '--backend', 'onnx', '--out', '{ctx.tmp}/o'])\n"
    )
    return run_cli([], ctx.tmp, python_args=["-c", code])


case(
    "10",
    "detect --backend onnx without onnxruntime: names the extra",
    [],
    run=_no_onnxruntime,
    has=("mitodet[export]",),
)


def _wheel(ctx: Ctx) -> Result:
    """pip install . (non-editable): the configs ship; a bundled config name works outside the checkout."""
    r = run_cli(
        [],
        ctx.tmp,
        python_args=[
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--target",
            str(ctx.tmp / "site"),
            str(ROOT),
        ],
        timeout=300,
    )
    if r.code != 0:
        return r
    return run_cli(
        ["train", "default-ca-rgb", "--set", f"data.crops={ctx.tmp}/none"],
        ctx.tmp,
        env={"PYTHONPATH": str(ctx.tmp / "site")},
    )


case(
    "10",
    "after pip install . the bundled configs ship (train default-ca-rgb)",
    [],
    run=_wheel,
    has=("site/mitodet/configs/default-ca-rgb.yaml",),
    timeout=400,
)
case(
    "10",
    "train with an unknown config name lists the bundled ones",
    ["train", "banana"],
    has=("banana", "default-ca-rgb"),
)


MINED = "data/tissue/monuseg/TCGA-21-5784-01Z-00-DX1.tif"  # a tile with pigment: something is mined


def _mined_paths(ctx: Ctx, r: Result) -> str | None:
    rows = list(csv.DictReader(open(ctx.tmp / "m" / "n.csv")))
    bad = [row["image"] for row in rows if row["image"] != "../" + MINED]
    return f"path written as {bad[0]}" if bad else (None if rows else "nothing mined")


case(
    "10",
    "mine residual writes paths as given (relative, links not resolved)",
    ["mine", "residual", MINED, "--mpp", "0.25", "--out", "m/n.csv"],
    setup=lambda c: (c.tmp / "data").symlink_to(DATA),
    expect="ok",
    check=_mined_paths,
)
case(
    "10",
    "mine residual on a PNG without --mpp: refused as detect does",
    ["mine", "residual", "{tmp}/x.png", "--out", "{tmp}/n.csv"],
    setup=lambda c: (c.tmp / "x.png").write_bytes(real_png()),
    has=("x.png", "--mpp"),
)
case("10", "unknown command", ["banana"], has=("banana",))
case("10", "unknown option", ["detect", "--banana"], has=("--banana",))
case("10", "missing required option", ["evaluate", "-t", "x.json"], has=("--pred",))
case(
    "10",
    "model list table at 80 columns: nothing cut",
    ["model", "list"],
    expect="ok",
    check=lambda c, r: "cut with …" if "…" in r.out else None,
)
