"""The command as a person meets it (issue 12, items 9 and 10): entry points, help, flags,
one-line errors, quiet third parties, results on stdout."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

import pytest

from mitodet import __version__
from mitodet.cli.main import app, quiet_third_parties
from tests.conftest import ROOT, need, one_error_line


def _walk(group, path=()):
    yield list(path)
    for name, cmd in getattr(group, "commands", {}).items():
        yield from _walk(cmd, (*path, name))


def _commands() -> list[list[str]]:
    """Every command and group of the app (the root, each group, each command in it)."""
    import typer.main

    return list(_walk(typer.main.get_command(app)))


COMMANDS = _commands()


def test_version_and_short_help(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"mitodet {__version__}"
    code, out, _ = cli("-h")
    assert code == 0 and out.startswith("Usage: mitodet") and "detect" in out
    code, out, _ = cli("mine", "residual", "-h")
    assert code == 0 and "--labels" in out


def test_python_dash_m_mitodet():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "mitodet", "--version"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == f"mitodet {__version__}", r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "mitodet", "detect", "--tile", "0"], capture_output=True, text=True, env=env
    )
    one_error_line(r.returncode, r.stderr, "--tile")


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "mitodet")
def test_help_is_whole_at_80_columns_and_flags_take_no_value(cli, cmd):
    code, out, err = cli(*cmd, "--help")
    assert code == 0, err
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "…" not in out and "<bool>" not in out
    # command lists give each first sentence whole (wrapped), not cut with "..."
    assert not [line for line in lines if line.rstrip().endswith("...") and not line.startswith("Usage")]


def test_every_boolean_option_is_a_flag_pair():
    """No flag renders as "--x <bool>": each has a --no-x form (or is an eager --help/--version)."""
    import typer.main

    def walk(group):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from walk(cmd)
            else:
                yield name, cmd

    for name, cmd in walk(typer.main.get_command(app)):
        for p in cmd.params:
            if getattr(p, "is_flag", False) and p.name not in ("help", "version"):
                assert p.secondary_opts, f"{name} {p.opts[0]} has no --no- form"


def test_flags(cli, shared_data, tmp_path):
    patch = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    code, out, err = cli("detect", patch, "--mpp", "0.25", "--out", tmp_path, "--overlay", "--no-overlay", "--overlay")
    assert code == 0 and (tmp_path / "A00_01_0.overlay.png").is_file(), err
    code, out, err = cli("detect", patch, "--mpp", "0.25", "--out", tmp_path, "--overlay", "true")
    one_error_line(code, err, "true", "--overlay")


@pytest.mark.parametrize(
    "args, words",
    [
        (["banana"], ["banana"]),
        (["detect", "--banana"], ["--banana"]),
        (["evaluate", "-t", "x.json"], ["--pred"]),
        (["detect", "--tile", "abc"], ["--tile"]),
    ],
)
def test_usage_errors_are_one_line(cli, args, words):
    code, out, err = cli(*args)
    one_error_line(code, err, *words)
    assert "Usage" not in err


def test_results_on_stdout_errors_on_stderr(cli, shared_data, tmp_path):
    patch = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    code, out, err = cli("detect", patch, tmp_path / "nope.jpg", "--mpp", "0.25", "--out", tmp_path / "o")
    assert code == 2
    assert "A00_01_0.jpg: 1 mitotic figure(s)" in out and "mitotic figure" not in err
    assert "nope.jpg" in err and "nope.jpg" not in out


def test_tifffile_log_lines_do_not_come_before_the_error(cli, shared_data, tmp_path):
    """A real tile re-saved with its first-IFD offset pointing past the end: tifffile logs
    "invalid offset to first page" before failing; the user sees only our one line."""
    import tifffile

    from mitodet.io.image import read_image

    rgb, _ = read_image(need(shared_data / "tissue" / "monuseg" / "TCGA-18-5592-01Z-00-DX1.tif"), check_spacing=False)
    bad = tmp_path / "bad.tif"
    tifffile.imwrite(bad, rgb[:128, :128])
    b = bytearray(bad.read_bytes())
    b[4:8] = (10**9).to_bytes(4, "little")
    bad.write_bytes(bytes(b))
    code, out, err = cli("detect", bad, "--mpp", "0.25", "--out", tmp_path / "o")
    one_error_line(code, err, "bad.tif", "no readable image page")
    assert "invalid offset" not in err  # tifffile's own log line


def test_third_party_warnings_and_logs_are_quiet_ours_one_line(capsys):
    with warnings.catch_warnings():
        quiet_third_parties()
        warnings.warn_explicit("TypedStorage is deprecated", UserWarning, "torch/storage.py", 1, module="torch.storage")
        logging.getLogger("tifffile").warning("<tifffile.TiffPage 0> invalid tag")
        logging.getLogger("PIL.PngImagePlugin").warning("truncated")
        warnings.warn_explicit("reading upsamples x2", UserWarning, "mitodet/io/slide.py", 1, module="mitodet.io.slide")
    err = capsys.readouterr().err
    assert err == "warning: reading upsamples x2\n"


@pytest.mark.parametrize("sig, code, word", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")])
def test_ctrl_c_is_exit_130_without_traceback(shared_data, tmp_path, sig, code, word):
    """SIGINT (or SIGTERM, #19 item 17) in the middle of a detection run (after the first
    output): one line, exit 130 (143), no traceback, no temporary file left."""
    import shutil
    import signal
    import time

    import torch

    from mitodet.model import create_model, save_checkpoint

    patch = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    (tmp_path / "in").mkdir()
    n = 400  # enough work that a loaded machine still signals mid-run (60 finished first once)
    for i in range(n):
        shutil.copy(patch, tmp_path / "in" / f"p{i:03d}.jpg")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny.pt", create_model("tiny").eval(), mpp=0.25, threshold=0.5)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "mitodet",
        "detect",
        str(tmp_path / "in"),
        "--mpp",
        "0.25",
        "--out",
        str(tmp_path / "o"),
    ]
    proc = subprocess.Popen(
        [*cmd, "--model", str(tmp_path / "tiny.pt")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a test run earlier in this process (or an xdist worker) may ignore
        # SIGINT, and a child inherits SIG_IGN, so Python would never raise KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120

    def first_output() -> bool:  # models loaded, signal handlers set, the first image written
        o = tmp_path / "o"
        return o.is_dir() and any(not p.name.startswith(".") for p in o.iterdir())

    while not first_output() and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the signal could be sent"
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == f"error: {word}"
    assert out.count("mitotic figure(s)") < n  # stopped before the end
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]


def test_an_interrupt_inside_an_import_is_still_an_interrupt(monkeypatch, capsys):
    """Ctrl-C (or SIGTERM) while a C extension initialises surfaces as that module's ImportError
    ("initialization failed", from the KeyboardInterrupt): one line and exit 130, as any other
    interrupt; an ImportError of its own still raises."""
    import mitodet.cli.main as main

    def interrupted_import(**_):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as err:
            raise ImportError("initialization failed") from err

    monkeypatch.setattr(main, "app", interrupted_import)
    with pytest.raises(SystemExit) as ex:
        main.run(["detect"])
    assert ex.value.code == 130
    assert capsys.readouterr().err.strip() == "error: interrupted"

    def broken_import(**_):
        raise ImportError("no module named nowhere")

    monkeypatch.setattr(main, "app", broken_import)
    with pytest.raises(ImportError):
        main.run(["detect"])


def test_a_console_that_cannot_print_micro_gets_no_traceback(shared_data):
    """#19 item 14: an ASCII console sees \\xb5 for µ, and the command succeeds."""
    import os
    import subprocess
    import sys

    tile = shared_data / "tissue" / "monuseg" / "TCGA-18-5592-01Z-00-DX1.tif"
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    r = subprocess.run([sys.executable, "-m", "mitodet", "data", "image", str(tile), "--mpp", "0.25"],
                       capture_output=True, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr.decode()
    assert b"\\xb5m/px" in r.stdout and b"Traceback" not in r.stderr
