"""``mitodet mine``: the paper's two negative-mining strategies (residual, hard)."""

from __future__ import annotations

import typer

# Shared group: `residual` is added by mitodet.cli.mine (stain stage),
# `hard` by mitodet.cli.train (it retrains models).
mine_app = typer.Typer(help="Mine extra negatives: stain-residual mining and hard-negative mining.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``mine`` group to the root app."""
    app.add_typer(mine_app, name="mine")
