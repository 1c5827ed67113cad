"""Option checks shared by the commands: typer callbacks that turn a bad value into one line.

Every callback raises :class:`~mitodet.errors.MitodetError` naming the option, so ``mitodet``
prints ``error: --tile: ...`` and exits 2 before any work starts. The checks themselves live
in the library (:mod:`mitodet.settings` for detection settings,
:mod:`mitodet.io.image` for pixel spacings, :mod:`mitodet.io.files` for output paths); these
wrappers only attach them to options::

    tile: int = typer.Option(1024, "--tile", callback=options.tile)
    beta: float = typer.Option(0.15, callback=options.number(lo=0, lo_open=True))

A callback receives ``None`` for an option left unset (no value to check).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import typer
from typer.core import TyperArgument, TyperCommand

from mitodet.errors import MitodetError

# Words a user may write after a flag (``--overlay true``): the flag takes no value, so the word
# would otherwise be read as an input file.
_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def group(help: str) -> typer.Typer:
    """A command group: plain help (never cut at 80 columns or in a pipe, flags shown as
    ``--x / --no-x``), help on no arguments, ``-h`` as well as ``--help``."""
    return typer.Typer(
        help=help,
        no_args_is_help=True,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


# What a value is called in the help when its declaration names none: never typer's Python type
# hint (``<list[Path]>``, ``<int>``).
METAVARS = {Path: "PATH", int: "N", float: "X", str: "TEXT"}


class _PlainArgument(TyperArgument):
    """An argument listed by its name alone (``INPUTS...``), without typer's type hint."""

    def display_type_rich(self, ctx) -> None:
        return None

    def _rich_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:  # RUN, [CONFIG], IMAGES... as click writes them
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def _value_type(param) -> type | None:
    desc = getattr(param, "type_descriptor", None)  # typer >= 0.22
    if desc is None:
        return {"path": Path, "integer": int, "float": float}.get(getattr(param.type, "name", ""), str)
    ann = desc.annotation
    if desc.is_list and get_args(ann):
        ann = get_args(ann)[0]
    return ann if isinstance(ann, type) else None


def plain_metavar(param) -> None:
    """Give ``param`` a metavar of plain words where its declaration gives none: an argument is
    named by its name (``RUN``, ``INPUTS...``), an option value by what it is (PATH, N, X, TEXT)."""
    if isinstance(param, TyperArgument):
        param.__class__ = _PlainArgument
        if param.metavar is None:
            param.metavar = param.name.upper()
    elif param.metavar is None and not getattr(param, "is_flag", False):
        kind = _value_type(param)
        is_path = kind is not None and issubclass(kind, os.PathLike)
        param.metavar = "PATH" if is_path else METAVARS.get(kind, "TEXT")  # type: ignore[arg-type]


class Command(TyperCommand):
    """A command whose help is plain words: each value named by what it is (see :func:`plain_metavar`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for p in self.params:
            plain_metavar(p)


def _name(param: typer.CallbackParam | None) -> str:
    if param is None:
        return "option"
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")] or list(getattr(param, "opts", []))
    return opts[0] if opts else str(getattr(param, "name", "option")).upper()


def _range_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{lo:g} {'<' if lo_open else '<='} ")
    parts.append("x")
    if hi is not None:
        parts.append(f" {'<' if hi_open else '<='} {hi:g}")
    return "".join(parts)


def check_number(
    value: Any,
    source: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> Any:
    """``value`` if it is a finite number (a whole one when ``integer``) within the bounds; else
    a one-line MitodetError naming ``source``. None passes (an unset option)."""
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise MitodetError(source, f"{value!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(x):
        raise MitodetError(source, f"{value!r} is not a finite number")
    if integer and x != int(x):
        raise MitodetError(source, f"{value!r} is not a whole number")
    bad = (lo is not None and (x <= lo if lo_open else x < lo)) or (hi is not None and (x >= hi if hi_open else x > hi))
    if bad:
        raise MitodetError(source, f"{value!r} is out of range (expected {_range_text(lo, hi, lo_open, hi_open)})")
    return value


def number(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> Callable:
    """A callback accepting finite numbers within [lo, hi] (``lo_open``/``hi_open``: bound excluded)."""

    def callback(param: typer.CallbackParam, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [check_number(v, _name(param), lo, hi, lo_open, hi_open, integer) for v in value]
        return check_number(value, _name(param), lo, hi, lo_open, hi_open, integer)

    return callback


def positive_int(param: typer.CallbackParam, value: Any) -> Any:
    """A whole number >= 1."""
    return check_number(value, _name(param), lo=1, integer=True)


def count(param: typer.CallbackParam, value: Any) -> Any:
    """A whole number >= 0."""
    return check_number(value, _name(param), lo=0, integer=True)


def fraction(param: typer.CallbackParam, value: Any) -> Any:
    """A number in the open interval (0, 1)."""
    return check_number(value, _name(param), lo=0, hi=1, lo_open=True, hi_open=True)


def minutes(param: typer.CallbackParam, value: Any) -> Any:
    """A time budget in minutes: > 0 (None: no budget)."""
    return check_number(value, _name(param), lo=0, lo_open=True)


def mpp(param: typer.CallbackParam, value: Any) -> Any:
    """A pixel spacing within the plausible range of :func:`mitodet.io.image.check_mpp`."""
    from mitodet.io.image import check_mpp

    return check_mpp(value, _name(param))


def threshold(param: typer.CallbackParam, value: Any) -> Any:
    """A decision threshold: a probability in [0, 1]."""
    from mitodet.settings import check_threshold

    return check_threshold(value, _name(param))


def tile(param: typer.CallbackParam, value: Any) -> Any:
    """A dense-inference tile side (see :data:`mitodet.infer.detector.MIN_TILE`)."""
    from mitodet.settings import check_tile

    return None if value is None else check_tile(value, _name(param))


def batch_size(param: typer.CallbackParam, value: Any) -> Any:
    """Tiles per forward pass."""
    from mitodet.settings import check_batch_size

    return None if value is None else check_batch_size(value, _name(param))


def threads(param: typer.CallbackParam, value: Any) -> Any:
    """CPU threads for torch (unset: torch's default)."""
    from mitodet.settings import check_threads

    return check_threads(value, _name(param))


def device(param: typer.CallbackParam, value: Any) -> Any:
    """cpu, cuda, cuda:N (present here) or mps."""
    from mitodet.settings import check_device

    return None if value is None else check_device(value, _name(param))


def out_dir(param: typer.CallbackParam, value: Any) -> Any:
    """An output folder that exists or can be created, and can be written."""
    from mitodet.io.files import check_output_dir

    return None if value is None else check_output_dir(value, _name(param))


def out_file(param: typer.CallbackParam, value: Any) -> Any:
    """An output file whose folder exists or can be created, and can be written."""
    from mitodet.io.files import check_output_file

    return None if value is None else check_output_file(value, _name(param))


def inputs(param: typer.CallbackParam, value: Any) -> Any:
    """Input paths; a missing one that reads like a boolean (``--overlay true``) gets a hint."""
    for p in value or []:
        if str(p).lower() in _BOOL_WORDS and not Path(p).exists():
            raise MitodetError(
                p, "file not found (flags take no value: write e.g. --overlay or --no-overlay, not --overlay true)"
            )
    return value


# The run-folder options of the training commands (train, train-atypical), declared once.
RESUME = typer.Option(None, "--resume", metavar="RUN", help="Continue the run in this folder from its last.pt.")
RUN_DIR = typer.Option(None, "--run-dir", metavar="DIR", help="Run folder (default: <out>/<name>-<timestamp>).")
FORCE = typer.Option(False, "--force/--no-force", help="Replace the run already in --run-dir.")
RUN_FILES = ("config.yaml", "last.pt", "best.pt", "metrics.csv")


def refuse_held_run(run_dir: Path | None, force: bool) -> None:
    """Stop a new run from writing into a folder that holds one (unless ``--force``)."""
    held = [f for f in RUN_FILES if run_dir and (run_dir / f).exists()]
    if held and not force:
        raise MitodetError(
            run_dir, f"holds a run already ({', '.join(held)}): --resume it, or another --run-dir, or --force"
        )
