"""Root of the ``mitodet`` command: one module per stage registers its commands.

Every MitodetError raised below becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import typer

from mitodet.errors import MitodetError

app = typer.Typer(
    help="Rotation-invariant mitotic-figure detection in H&E images (Lafarge & Koelzer, MIDOG 2022).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each mitodet.cli.<stage> module defines register(app) adding its commands/groups.
STAGES = ["data", "model", "augment", "train", "stain", "mine", "infer", "evaluate"]

for _stage in STAGES:
    importlib.import_module(f"mitodet.cli.{_stage}").register(app)


def run() -> None:
    """Console entry point."""
    from mitodet.cli.infer import normalize_argv

    sys.argv[1:] = normalize_argv(sys.argv[1:])
    try:
        app()
    except MitodetError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run()
