"""``mitodet train`` and ``mitodet mine hard``: the paper's training and hard-negative mining."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from mitodet.cli.mine import mine_app

console = Console()


def train_cmd(
    config: Path = typer.Argument(None, help="YAML config (see configs/); paths in it are relative to the cwd"),
    set_: list[str] = typer.Option([], "--set", help="override a setting: --set optim.lr=0.01 --set data.exclude.scanner=[Aperio CS2]"),
    resume: Path = typer.Option(None, "--resume", help="continue the run in this folder from its last.pt"),
    run_dir: Path = typer.Option(None, "--run-dir", help="run folder (default: <out>/<name>-<timestamp>)"),
    max_minutes: float = typer.Option(None, "--max-minutes", help="stop after the epoch that would cross this budget"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Train the P4 ResNet as in the paper; writes a run folder (config, metrics.csv, loss.png, best.pt, last.pt)."""
    from mitodet.errors import MitodetError
    from mitodet.train.config import load_config, override_config
    from mitodet.train.run import read_run_config, train

    if resume is not None:
        cfg = override_config(read_run_config(resume), set_, str(resume / "config.yaml"))
        summary = train(cfg, run_dir=resume, resume=True, quiet=quiet, max_minutes=max_minutes)
    else:
        if config is None:
            raise MitodetError("mitodet train", "give a CONFIG.yaml or --resume RUN")
        cfg = load_config(config, set_)
        summary = train(cfg, run_dir=run_dir, quiet=quiet, max_minutes=max_minutes)
    best = (f"best val loss {summary.best_val_loss:.4f}, F1 {summary.best_val_f1:.3f} (epoch {summary.best_epoch})"
            if summary.best_val_loss is not None else "no validation split")
    stop = ", stopped by the time budget" if summary.stopped_early else ""
    console.print(f"run {summary.run_dir}: {summary.epochs} epochs{stop}; {best}")


def hard_cmd(
    run: Path = typer.Argument(..., help="a finished training run folder (with best.pt)"),
    rounds: int = typer.Option(3, "--rounds", help="at most this many retraining rounds"),
    drop_quantile: float = typer.Option(0.5, "--drop-quantile", help="drop this fraction of the easiest negatives per round"),
    patience: int = typer.Option(1, "--patience", help="stop after this many rounds without a higher val F1"),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="retrain each round from scratch (default: from the previous best.pt)"),
    set_: list[str] = typer.Option([], "--set", help="override settings of the retraining rounds (e.g. train.epochs=5)"),
    max_minutes: float = typer.Option(None, "--max-minutes", help="time budget of each round"),
    quiet: bool = typer.Option(False, "--quiet"),
) -> None:
    """Hard-negative mining: score every training negative, keep the hardest, retrain; repeat while val F1 rises."""
    from mitodet.mine.hard import hard_negative_mining

    result = hard_negative_mining(run, rounds=rounds, drop_quantile=drop_quantile, patience=patience,
                                  from_scratch=from_scratch, overrides=set_, quiet=quiet, max_minutes=max_minutes)
    console.print(f"hard mining {run}: best round {result.best_round} (val F1 {result.best_f1:.3f}); "
                  f"table {result.table}, best model {result.best_checkpoint}")


def register(app: typer.Typer) -> None:
    """Add ``train`` to the root app and ``hard`` to the ``mine`` group."""
    app.command("train")(train_cmd)
    mine_app.command("hard")(hard_cmd)
