"""Item 1: no code runs from a file (pickles, configs, names)."""

from __future__ import annotations

from tests.reliability.harness import DET, PATCH, Ctx, Result, case
from tests.reliability.hostile import evil_pickle


def _evil_check(ctx: Ctx, r: Result) -> str | None:
    return "the pickle ran code (marker file written)" if (ctx.tmp / "MARKER").exists() else None


def _evil(name: str = "evil.pt", where: str = "whole"):
    def setup(ctx: Ctx) -> None:
        evil_pickle(ctx.tmp / name, ctx.tmp / "MARKER", where)

    return setup


def _evil_run(filename: str, where: str = "whole"):
    def setup(ctx: Ctx) -> None:
        run = ctx.copy_run()
        if where == "state":
            evil_pickle(run / filename, ctx.tmp / "MARKER", "state")
        else:
            evil_pickle(run / filename, ctx.tmp / "MARKER", where)

    return setup


E1 = dict(check=_evil_check)
case(
    "1",
    "detect --model: pickle with code",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/evil.pt"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "detect --model: code hidden in a valid checkpoint's meta",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/evil.pt"],
    setup=_evil(where="checkpoint"),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "detect --model as the second of a pair",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "-m", "{repo}/mitodet/weights/default-ca-rgb.pt", "-m", "{tmp}/evil.pt"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "detect --backend onnx --model: pickle with code",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--backend", "onnx", "--model", "{tmp}/evil.pt"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "train --resume: last.pt with code",
    ["train", "--resume", "{tmp}/run"],
    setup=_evil_run("last.pt"),
    has=("last.pt",),
    **E1,
)
case(
    "1",
    "train --resume: code hidden in last.pt's RNG state",
    ["train", "--resume", "{tmp}/run"],
    setup=_evil_run("last.pt", "state"),
    has=("last.pt",),
    **E1,
)
case(
    "1",
    "train: model.init with code",
    lambda c: [
        "train",
        str(c.tiny_run() / "tiny.yaml"),
        "--set",
        f"model.init={c.tmp / 'evil.pt'}",
        "--run-dir",
        str(c.tmp / "r"),
    ],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "mine hard: best.pt with code",
    ["mine", "hard", "{tmp}/run", "--rounds", "1"],
    setup=_evil_run("best.pt"),
    has=("best.pt",),
    **E1,
)
case(
    "1", "calibrate: best.pt with code", ["calibrate", "{tmp}/run"], setup=_evil_run("best.pt"), has=("best.pt",), **E1
)
case(
    "1",
    "calibrate --checkpoint with code",
    lambda c: ["calibrate", str(c.tiny_run() / "run"), "--checkpoint", str(c.tmp / "evil.pt"), "--dry-run"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "model export: pickle with code",
    ["model", "export", "{tmp}/evil.pt", "--onnx", "{tmp}/m.onnx"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1", "model summary: pickle with code", ["model", "summary", "{tmp}/evil.pt"], setup=_evil(), has=("evil.pt",), **E1
)
case(
    "1",
    "model check: pickle with code",
    ["model", "check", "{tmp}/evil.pt", "--image", "{data}/" + PATCH],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
