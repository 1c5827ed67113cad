"""The help is consistent (#20 item 14): every command's --help at 80 columns names values in
plain words (no Python type hint such as <list[Path]> or <int>), every help text is a
sentence (capital first, full stop last), every output option takes -o, and every command
that shows progress takes -q/--quiet, which really hides it."""

from __future__ import annotations

import functools
import io
import re

import pytest
import typer.main
from rich.console import Console

from mitodet.cli import ui
from mitodet.cli.main import app
from tests.cli.test_cli_main import COMMANDS
from tests.conftest import need

# What typer writes for a value whose declaration names none: <str>, <int>, <path>, <list[Path]> ...
TYPE_HINT = re.compile(r"<(list\[[^>]*\]|str|int|float|bool|path|file|directory|text|integer|tuple[^>]*)>", re.I)
# Commands that show a progress bar: each takes -q/--quiet.
PROGRESS = [
    ["detect"],
    ["train"],
    ["train-atypical"],
    ["finetune"],
    ["calibrate"],
    ["classify"],
    ["mine", "hard"],
    ["mine", "residual"],
]
OUTPUT_OPTIONS = {"--out", "--output", "--onnx"}  # each names the command's output file or folder


@functools.cache
def _root():
    return typer.main.get_command(app)


def _command(path: list[str]):
    cmd = _root()
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _leaves() -> list[list[str]]:
    return [c for c in COMMANDS if c and not hasattr(_command(c), "commands")]


def _ctx(path: list[str]):
    cmd = _command(path)
    return cmd, cmd.make_context(" ".join(["mitodet", *path]), [], resilient_parsing=True)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "mitodet")
def test_help_names_values_in_plain_words(cli, cmd):
    code, out, err = cli(*cmd, "-h")
    assert code == 0, err
    assert not TYPE_HINT.search(out), TYPE_HINT.search(out).group(0)
    assert "<list[" not in out
    if cmd in _leaves():
        command, ctx = _ctx(cmd)
        for p in command.get_params(ctx):
            record = p.get_help_record(ctx)
            if record is None:
                continue
            left = record[0]  # the option names and their value: "-o, --out DIR", "RUN"
            assert "<" not in left and "{" not in left, (cmd, left)
            value = left.split(" / ")[0].split()[-1].rstrip(".")
            if not value.startswith("-"):
                assert value.strip("[]").upper() == value.strip("[]"), (cmd, left)  # PATH, N, X, KEY=VALUE


@pytest.mark.parametrize("cmd", _leaves(), ids=" ".join)
def test_help_texts_are_sentences(cmd):
    command, ctx = _ctx(cmd)
    assert command.help and command.help.strip()[0].isupper(), cmd
    for p in command.get_params(ctx):
        text = " ".join((p.help or "").split())
        assert text, (cmd, p.name)
        assert not text[0].islower(), (cmd, p.name, text)
        assert text.endswith("."), (cmd, p.name, text)


@pytest.mark.parametrize("cmd", _leaves(), ids=" ".join)
def test_notes_for_developers_stay_out_of_the_help(cli, cmd):
    """What a docstring says after its form feed is for readers of the code, not for --help
    (typer once printed calibrate's, whose docstring had a single paragraph before it)."""
    code, out, _ = cli(*cmd, "-h")
    note = (_command(cmd).callback.__doc__ or "").partition("\f")[2]
    assert code == 0
    if note:
        assert " ".join(note.split()[:2]) not in " ".join(out.split()), cmd


@pytest.mark.parametrize("cmd", _leaves(), ids=" ".join)
def test_output_options_take_dash_o(cmd):
    command, _ = _ctx(cmd)
    for p in command.params:
        if OUTPUT_OPTIONS & set(p.opts):
            assert "-o" in p.opts, (cmd, p.opts)


def test_every_output_command_is_seen():
    """The -o rule above sees the commands it is meant for."""
    have = {" ".join(c) for c in _leaves() if any(OUTPUT_OPTIONS & set(p.opts) for p in _command(c).params)}
    expected = {"detect", "evaluate", "classify", "finetune", "data split", "augment preview", "stain unmix"}
    assert expected | {"mine residual", "model export"} <= have


@pytest.mark.parametrize("cmd", PROGRESS, ids=" ".join)
def test_progress_commands_take_quiet(cli, cmd):
    command, _ = _ctx(cmd)
    quiet = [p for p in command.params if "--quiet" in p.opts]
    assert quiet and "-q" in quiet[0].opts and quiet[0].secondary_opts == ["--no-quiet"], cmd
    code, out, _ = cli(*cmd, "-h")
    assert code == 0 and "-q, --quiet" in out


@pytest.fixture
def terminal_stderr(monkeypatch):
    """Progress bars drawn as on a terminal, into a buffer."""
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    monkeypatch.setattr(ui, "err_console", console)
    return console


@pytest.mark.parametrize("quiet", [False, True], ids=["bar", "quiet"])
def test_quiet_hides_the_bar_of_mine_residual_and_classify(cli, shared_data, tmp_path, terminal_stderr, quiet):
    patch = need(shared_data / "icpr2012_patches" / "images" / "A00_01_0.jpg")
    crop = need(shared_data / "midog21_crops" / "images")
    crops = sorted(crop.glob("*.png"))[:2]
    flag = ["-q"] if quiet else []
    code, _, err = cli("mine", "residual", patch, "--mpp", "0.25", "-o", tmp_path / "neg.csv", *flag)
    assert code == 0, err
    code, _, err = cli("classify", *crops, "--mpp", "0.25", "-o", tmp_path / "cls", *flag)
    assert code == 0, err
    shown = terminal_stderr.file.getvalue()
    if quiet:
        assert shown == ""
    else:
        assert "residual mining" in shown and "crops" in shown
