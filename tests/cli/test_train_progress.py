"""The training progress display (#20 item 13): ``epoch N/M``, a step bar whose clock and ETA
are the current epoch's own (they froze at the end of epoch 1), a validation bar of its own
while validation runs, and no bar at all with --quiet."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console
from rich.progress import Progress

from mitodet.cli import ui
from mitodet.cli.train import TrainBars, train_progress


class Clock:
    """A fake clock for rich: seconds advance only when the test says so."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100)


def test_every_epoch_has_its_own_clock_eta_and_a_validation_bar():
    clock = Clock()
    console = _terminal()
    bar = Progress(*Progress.get_default_columns(), console=console, get_time=clock, auto_refresh=False)
    bars = TrainBars(bar)
    with bar:
        for i in range(5):  # loading the images
            bars.on_image(i + 1, 5)
        for epoch in (1, 2):
            bars.on_epoch(epoch, 2)
            for step in range(10, 101, 10):  # 10 steps a second
                clock.t += 1.0
                bars.on_step(step, 100, 0.5, 320.0)
                if step == 50:
                    task = bar.tasks[bars.steps]
                    assert task.description.startswith(f"epoch {epoch}/2 ")
                    assert task.elapsed == pytest.approx(5.0)  # the epoch's own clock, in epoch 2 too
                    assert task.time_remaining == pytest.approx(5.0)
                    assert not bar.tasks[bars.val].visible
            for done in (0, 100, 200):
                clock.t += 1.0
                bars.on_val("windows", done, 200)
            val = bar.tasks[bars.val]
            assert val.visible and val.description == f"epoch {epoch}/2 validation (windows)"
            assert (val.completed, val.total) == (200, 200) and val.elapsed == pytest.approx(2.0)
            bars.on_val("detection", 1, 3)
            val = bar.tasks[bars.val]
            assert val.description == f"epoch {epoch}/2 validation (detection)" and val.completed == 1
            bar.refresh()
            assert f"epoch {epoch}/2 validation (detection)" in console.file.getvalue()
    assert not bar.tasks[bars.load].visible
    shown = console.file.getvalue()
    assert "epoch 2/2 loss 0.5000" in shown and "loading images" in shown


def test_steps_of_a_new_epoch_restart_the_clock_without_on_epoch():
    """A caller that gives on_step only (steps counted from 1 again) still gets a live clock."""
    clock = Clock()
    bar = Progress(console=_terminal(), get_time=clock, auto_refresh=False)
    bars = TrainBars(bar)
    for _ in range(2):
        for step in (5, 10):
            clock.t += 1.0
            bars.on_step(step, 10, 0.1, 1.0)
        clock.t += 3.0
    bars.on_step(5, 10, 0.1, 1.0)  # the third epoch's first report starts its clock
    clock.t += 2.0
    bars.on_step(10, 10, 0.1, 1.0)
    assert bar.tasks[bars.steps].elapsed == pytest.approx(2.0)


@pytest.fixture
def terminal_stderr(monkeypatch):
    """ui's stderr console as a terminal writing to a buffer; mitodet's log handlers restored after."""
    console = _terminal()
    monkeypatch.setattr(ui, "err_console", console)
    log = logging.getLogger("mitodet")
    monkeypatch.setattr(log, "handlers", list(log.handlers))
    monkeypatch.setattr(log, "level", log.level)
    return console


@pytest.mark.parametrize("quiet", [False, True])
def test_quiet_shows_no_bar(terminal_stderr, quiet):
    with train_progress(quiet) as bars:
        for name, callback in bars.callbacks.items():
            assert callable(callback), name
        bars.on_epoch(1, 2)
        bars.on_step(4, 8, 0.25, 100.0)
        bars.on_val("windows", 10, 20)
        bars.bar.refresh() if not quiet else None
    shown = terminal_stderr.file.getvalue()
    assert ("epoch 1/2" in shown) is not quiet
    assert (shown == "") is quiet
