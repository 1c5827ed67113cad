"""What the CLI shows a person: results on stdout, diagnostics and progress on stderr.

The library never prints: it logs (``logging``) and reports progress through callbacks.
This module turns both into rich output. Lines are never cut to the terminal width
(``soft_wrap``): a number stays whole in a pipe or at 80 columns.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

out_console = Console(soft_wrap=True)  # results (stdout)
err_console = Console(stderr=True, soft_wrap=True)  # progress, notes, warnings, errors (stderr)


class _NoProgress:
    """What :func:`progress` returns when nothing is shown: the Progress calls we use, doing nothing
    (a disabled rich Progress still writes a newline on exit with some rich releases)."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *args, **kwargs) -> TaskID:
        return TaskID(0)

    def update(self, *args, **kwargs) -> None:
        return None

    def advance(self, *args, **kwargs) -> None:
        return None

    def reset(self, *args, **kwargs) -> None:
        return None


Bars = Progress | _NoProgress  # what progress() returns


def progress(transient: bool = False, disable: bool = False) -> Bars:
    """A progress bar on stderr (description, bar, done/total, elapsed, remaining); nothing when
    ``disable`` or when stderr is not a terminal."""
    if disable or not err_console.is_terminal:
        return _NoProgress()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    )


class _Handler(RichHandler):
    """Library log records as plain stderr lines ("warning: ..." for warnings)."""

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            msg = f"[yellow]{record.levelname.lower()}[/]: {msg}"
        self.console.print(msg, highlight=False)


def setup_logging(quiet: bool = False) -> None:
    """Send mitodet's log records to stderr (INFO and up; WARNING and up when ``quiet``)."""
    log = logging.getLogger("mitodet")
    log.handlers[:] = [_Handler(console=err_console)]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def table(
    title: str | None = None,
    columns: list[str] | tuple[str, ...] = (),
    right: set[str] | frozenset = frozenset(),
    **kwargs,
) -> Table:
    """A rich Table whose cells fold instead of being cut with "…" when the width is short."""
    t = Table(title=title, **kwargs)
    for c in columns:
        t.add_column(c, justify="right" if c in right else "left", overflow="fold")
    return t


def print_table(t: Table, console: Console | None = None) -> None:
    """Print ``t`` whole: at its natural width when the output is not a terminal (a pipe or file
    gets every number uncut), folded to the terminal's width otherwise."""
    console = console or out_console
    if not console.is_terminal:
        natural = console.measure(t, options=console.options.update_width(100_000)).maximum
        if natural > console.width:  # rich caps print(width=) at the console's own width
            console = Console(file=console.file, width=natural, soft_wrap=True, no_color=console.no_color)
    console.print(t)
