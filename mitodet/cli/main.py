"""Root of the ``mitodet`` command: one module per stage registers its commands.

What a person sees when something goes wrong is one line on stderr and an exit code:

- bad input (a :class:`~mitodet.errors.MitodetError`, a bad option value, an unknown option,
  a file that cannot be written): ``error: <what>: <problem>``, exit 2;
- memory exhausted: ``error: out of memory ...``, exit 1; Ctrl-C: exit 130.

Third-party chatter (tifffile's and Pillow's log records, torch's and others' Python warnings)
is silenced, so nothing comes before that line; set ``PYTHONWARNINGS`` (or ``-W``) to see the
warnings again. Help is plain text (``-h`` or ``--help``): never cut at 80 columns or in a pipe.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import signal
import sys
import warnings

import typer

from mitodet import __version__
from mitodet.errors import MitodetError

app = typer.Typer(
    help="Rotation-invariant mitotic-figure detection in H&E images (Lafarge & Koelzer, MIDOG 2022).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        print(f"mitodet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Rotation-invariant mitotic-figure detection in H&E images (Lafarge & Koelzer, MIDOG 2022)."""


# Each mitodet.cli.<stage> module defines register(app) adding its commands/groups.
STAGES = ["data", "model", "augment", "train", "stain", "mine", "infer", "evaluate", "classify"]

for _stage in STAGES:
    importlib.import_module(f"mitodet.cli.{_stage}").register(app)


def _first_sentence(text: str | None) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    para = " ".join(inspect.cleandoc(text).split("\n\n")[0].split())
    end = para.find(". ")
    return para if end < 0 else para[: end + 1]


def _whole_short_help(t: typer.Typer) -> None:
    """Command lists show each command's first sentence whole (wrapped), never cut with "...";
    each command's help names values in plain words (:class:`mitodet.cli.options.Command`)."""
    from typer.core import TyperCommand

    from mitodet.cli.options import Command

    for c in t.registered_commands:
        if c.cls in (None, TyperCommand):
            c.cls = Command
        if not c.short_help:
            c.short_help = _first_sentence(c.help or inspect.getdoc(c.callback))
    for g in t.registered_groups:
        sub = g.typer_instance
        if sub is not None:
            sub.info.short_help = _first_sentence(sub.info.help)
            _whole_short_help(sub)


_whole_short_help(app)

# Loggers of libraries we read files with: their records (e.g. tifffile's "<TiffFile ...> invalid
# tag") would come before our one-line error and say the same thing less clearly.
QUIET_LOGGERS = ("tifffile", "PIL", "tiffslide", "openslide", "imagecodecs", "matplotlib", "onnx", "onnxruntime")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning that still shows (mitodet's own, or any when PYTHONWARNINGS asks): one line."""
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def quiet_third_parties() -> None:
    """Silence library log records and Python warnings that are not mitodet's (see module doc)."""
    for name in QUIET_LOGGERS:
        log = logging.getLogger(name)
        log.handlers[:] = [logging.NullHandler()]
        log.propagate = False
    warnings.showwarning = _show_warning
    if not sys.warnoptions:  # PYTHONWARNINGS / -W given: the user asked to see them
        warnings.simplefilter("ignore")
        warnings.filterwarnings("default", module=r"mitodet\b.*")


def _click_exceptions():
    """The click exception classes typer uses (click itself, or the copy typer >= 0.22 vendors)."""
    return importlib.import_module(typer.BadParameter.__module__)


def _fail(text: str, code: int = 2) -> None:
    print(f"error: {text}", file=sys.stderr)
    sys.exit(code)


_TERMINATED: list[bool] = []


def _on_sigterm(signum, frame) -> None:
    """SIGTERM (``kill``, a scheduler's stop) is handled as Ctrl-C: outputs in progress are
    removed, finished ones kept, one line, exit 143."""
    _TERMINATED.append(True)
    raise KeyboardInterrupt


def _caused_by_interrupt(err: BaseException) -> bool:
    """Whether a KeyboardInterrupt (Ctrl-C or SIGTERM) is in the chain of causes of ``err``."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _interrupted() -> None:
    _fail("terminated", 143) if _TERMINATED else _fail("interrupted", 130)


def run(argv: list[str] | None = None) -> None:
    """Console entry point (``mitodet``, ``python -m mitodet``)."""
    quiet_third_parties()
    for stream in (sys.stdout, sys.stderr):  # a console that cannot print "²" or "µ" gets \xb2, not a traceback
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    with contextlib.suppress(ValueError):  # not the main thread: leave the signal alone
        signal.signal(signal.SIGTERM, _on_sigterm)
    exc = _click_exceptions()
    from mitodet.cli.infer import normalize_argv  # --ray without a value (see there)

    argv = normalize_argv(sys.argv[1:] if argv is None else list(argv))
    try:
        rv = app(args=argv, prog_name="mitodet", standalone_mode=False)
    except MitodetError as err:
        _fail(str(err))
    except exc.UsageError as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # a group without a command: its help
            err.show()
            sys.exit(err.exit_code)
        hint = f" (see: {err.ctx.command_path} --help)" if getattr(err, "ctx", None) is not None else ""
        _fail(" ".join(err.format_message().split()) + hint, err.exit_code)
    except exc.ClickException as err:
        _fail(" ".join(err.format_message().split()), err.exit_code)
    except typer.Abort as err:  # typer < 0.22 answers Ctrl-C with Abort
        _interrupted() if _caused_by_interrupt(err) else _fail("aborted", 1)
    except MemoryError:
        _fail("out of memory: the input is too large for this machine (try a smaller --tile or --batch-size)", 1)
    except OSError as err:  # a file the system refused: permissions, disk full, a folder in the way ...
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        _fail(f"{where}{err.strerror or err}")
    except Exception as err:  # Ctrl-C while a C extension initialises surfaces as its ImportError
        if not _caused_by_interrupt(err):
            raise
        _interrupted()
    if rv == 130:  # typer's answer to Ctrl-C
        _interrupted()
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    run()
