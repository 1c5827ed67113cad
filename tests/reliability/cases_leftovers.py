"""Item 9: leftovers and noise (temporary files, signals, warnings)."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import time

from tests.reliability.cases_evaluate import EV, REAL_TRUTH
from tests.reliability.cases_spacing import P
from tests.reliability.harness import (
    DATA,
    DET,
    PATCH,
    ROOT,
    TILE,
    Ctx,
    Result,
    _fmt,
    _limit_memory,
    case,
    no_temps,
    run_cli,
)
from tests.reliability.hostile import _rgb, eval_inputs, tiff_patched, write_tiff


def _plant_temp(folder: str, name: str):
    def setup(ctx: Ctx) -> None:
        d = ctx.tmp / folder
        d.mkdir(parents=True, exist_ok=True)
        p = d / name
        p.write_bytes(b"")
        old = time.time() - 3600
        os.utime(p, (old, old))

    return setup


def _temp_gone(folder: str, name: str):
    def check(ctx: Ctx, r: Result) -> str | None:
        return f"{name} still there" if (ctx.tmp / folder / name).exists() else None

    return check


case(
    "9",
    "evaluate removes a stale temp file in --out",
    [*EV[:-1], "{tmp}/ev"],
    setup=lambda c: (
        eval_inputs(c, truth=REAL_TRUTH),
        _plant_temp("ev", ".~mitodet-partial~.metrics.a1b2c3d4.json")(c),
    ),
    expect="ok",
    check=_temp_gone("ev", ".~mitodet-partial~.metrics.a1b2c3d4.json"),
)
case(
    "9",
    "stain unmix removes a stale temp file in --out",
    ["stain", "unmix", "{data}/" + TILE, "--out", "{tmp}/u"],
    setup=_plant_temp("u", ".~mitodet-partial~.x_residual.k9z_0abc.png"),
    expect="ok",
    check=_temp_gone("u", ".~mitodet-partial~.x_residual.k9z_0abc.png"),
)


def _user_dotfiles_kept(folder: str, names: tuple[str, ...]):
    def check(ctx: Ctx, r: Result) -> str | None:
        gone = [n for n in names if not (ctx.tmp / folder / n).exists()]
        return f"deleted the user's {', '.join(gone)}" if gone else None

    return check


USER_DOTFILES = (".env.template", ".notes.12345678.txt", ".backup.archive_.tar", ".img.mitotic-figures.k2j_x9ab.json")
for _cmd, _folder, _args in (
    ("detect", "out", [*P, "--mpp", "0.25"]),
    ("evaluate", "ev", [*EV[:-1], "{tmp}/ev"]),
):
    case(
        "9",
        f"{_cmd} leaves the user's old dotfiles in its output folder (only its own prefix is cleared)",
        _args,
        setup=lambda c, f=_folder, cmd=_cmd: (
            eval_inputs(c, truth=REAL_TRUTH) if cmd == "evaluate" else None,
            *(_plant_temp(f, n)(c) for n in USER_DOTFILES),
        ),
        expect="ok",
        check=_user_dotfiles_kept(_folder, USER_DOTFILES),
    )


def _resume_with_temp(ctx: Ctx) -> None:
    run = ctx.copy_run()
    _plant_temp("run", ".~mitodet-partial~.last.zz99yy88.pt")(ctx)
    assert run.is_dir()


case(
    "9",
    "train --resume removes a stale temp file in the run",
    ["train", "--resume", "{tmp}/run", "--max-minutes", "0.001", "--quiet"],
    setup=_resume_with_temp,
    expect="ok",
    check=_temp_gone("run", ".~mitodet-partial~.last.zz99yy88.pt"),
    timeout=300,
)
case(
    "9",
    "detect removes a stale temp file in --out (kill -9 leftover)",
    [*P, "--mpp", "0.25"],
    setup=_plant_temp("out", ".~mitodet-partial~.A00_01_0.mitotic-figures.q1w2e3r4.json"),
    expect="ok",
    check=_temp_gone("out", ".~mitodet-partial~.A00_01_0.mitotic-figures.q1w2e3r4.json"),
)
case(
    "9",
    "a fresh temp file of a running writer is left alone",
    [*EV[:-1], "{tmp}/ev"],
    setup=lambda c: (
        eval_inputs(c, truth=REAL_TRUTH),
        (c.tmp / "ev").mkdir(),
        (c.tmp / "ev" / ".~mitodet-partial~.metrics.fresh123.json").write_text(""),
    ),
    expect="ok",
    check=lambda c, r: (
        None if (c.tmp / "ev" / ".~mitodet-partial~.metrics.fresh123.json").exists() else "removed a file in use"
    ),
)
case(
    "9",
    "TIFF with a bad IFD offset: no tifffile log line",
    [*DET, "{tmp}/b.tif", "--mpp", "0.25"],
    setup=lambda c: (
        write_tiff(c.tmp / "b.tif", _rgb()),
        (c.tmp / "b.tif").write_bytes(
            (c.tmp / "b.tif").read_bytes()[:4] + struct.pack("<I", 10**9) + (c.tmp / "b.tif").read_bytes()[8:]
        ),
    ),
    has=("b.tif",),
)
case(
    "9",
    "TIFF with an invalid photometric tag: no tifffile log line",
    ["stain", "vectors", "{tmp}/p.tif"],
    setup=lambda c: tiff_patched(c.tmp / "p.tif", 262, 99),
    expect="ok",
    check=lambda c, r: "tifffile chatter" if "tifffile" in r.err or "raised" in r.err else None,
)
case(
    "9",
    "TIFF with a broken description tag: no tifffile log line",
    ["stain", "vectors", "{tmp}/d.tif"],
    setup=lambda c: tiff_patched(c.tmp / "d.tif", 270, 10**8),
    expect="ok",
    check=lambda c, r: "tifffile chatter" if "tifffile" in r.err or "raised" in r.err else None,
)


def _stdout_results(ctx: Ctx, r: Result) -> str | None:
    if not any("mitotic figure(s)" in line for line in r.out_lines):
        return "result line not on stdout"
    return "result line on stderr" if any("mitotic figure(s)" in line for line in r.err_lines) else None


case(
    "9",
    "detect: result lines on stdout (> log captures them)",
    [*P, "--mpp", "0.25"],
    expect="ok",
    check=_stdout_results,
)
case(
    "9",
    "detect: an error goes to stderr, not stdout",
    [*DET, "{tmp}/nope.jpg", "--mpp", "0.25"],
    has=("nope.jpg",),
    check=lambda c, r: "error on stdout" if "error" in r.out else None,
)


def _interruptible() -> None:
    """In the child: the memory limit, and SIGINT back to its default (a benchmark started in the
    background by a shell inherits SIGINT ignored, and Python then never raises KeyboardInterrupt)."""
    _limit_memory()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(ctx: Ctx, sig: int = signal.SIGINT) -> Result:
    """detect on 60 real patches; ``sig`` (SIGINT: Ctrl-C) once the first output exists."""
    (ctx.tmp / "in").mkdir()
    for i in range(60):
        shutil.copy(DATA / PATCH, ctx.tmp / "in" / f"p{i:02d}.jpg")
    args = _fmt([*DET, "{tmp}/in", "--mpp", "0.25"], ctx)
    e = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mitodet", *args],
        cwd=ctx.tmp,
        env=e,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_interruptible,
    )
    while not (ctx.tmp / "out").is_dir() and proc.poll() is None and time.perf_counter() - t0 < 300:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return Result(proc.returncode, out, err, time.perf_counter() - t0)


case(
    "9",
    "Ctrl-C during detection: exit 130, no traceback, nothing half-written",
    [*DET, "{tmp}/in", "--mpp", "0.25"],
    run=_interrupt,
    code=130,
    has=("interrupted",),
    check=lambda c, r: no_temps(c.tmp / "out"),
)


def _third_party_warning(ctx: Ctx) -> Result:
    code = (
        "import warnings\n"
        "from mitodet.cli.main import run\n"
        "import mitodet.evaluate.midog as m\n"
        "orig = m.evaluate\n"
        "def ev2(*a, **k):\n"
        "    warnings.warn_explicit('TypedStorage is deprecated', UserWarning, 'torch/storage.py', 1,\n"
        "                           module='torch.storage')\n"
        "    return orig(*a, **k)\n"
        "m.evaluate = ev2\n"
        f"run(['evaluate', '-t', '{ctx.tmp}/nope.json', '-p', '{ctx.tmp}', '-o', '{ctx.tmp}/ev'])\n"
    )
    return run_cli([], ctx.tmp, python_args=["-c", code])


case("9", "a torch warning before an error is not shown", [], run=_third_party_warning, has=("nope.json",))
