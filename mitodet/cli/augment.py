"""``mitodet augment preview``: look at the augmentation protocols on real patches."""

from __future__ import annotations

from pathlib import Path

import typer

from mitodet.cli import options
from mitodet.cli.ui import out_console

augment_app = options.group("Augmentation protocol of the paper (CA-RGB / CA-OD).")


@augment_app.command("preview")
def preview(
    config: str = typer.Option(
        "default-ca-rgb",
        metavar="CONFIG",
        help="Training config: a YAML file or a bundled config name (its augment section and labelled data).",
    ),
    protocol: str = typer.Option("both", metavar="NAME", help="Protocol: ca-rgb, ca-od or both."),
    out: Path = typer.Option(
        Path("augment_preview.png"), "--out", "-o", metavar="FILE", help="PNG to write.", callback=options.out_file
    ),
    n: int = typer.Option(8, help="Number of real patches (rows), 1-64.", callback=options.number(1, 64, integer=True)),
    n_aug: int = typer.Option(
        7, help="Augmented versions per patch and protocol, 1-32.", callback=options.number(1, 32, integer=True)
    ),
    negatives: bool = typer.Option(False, help="Show negative patches instead of mitoses."),
    seed: int = typer.Option(0, help="Random seed (>= 0).", callback=options.count),
    set_: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="Override a config setting, e.g. augment.rgb.scale=0.2."
    ),
) -> None:
    """Write a PNG grid: each row a real patch (first column) and its augmentations per protocol."""
    from mitodet.augment.preview import column_labels, write_png
    from mitodet.resources import config_path
    from mitodet.train.preview import augment_preview

    img, facts = augment_preview(config_path(config), protocol, n, n_aug, negatives, seed, set_)
    write_png(out, img, labels=column_labels(list(facts["protocols"]), n_aug))
    out_console.print(
        f"wrote {out}: {facts['patches']} patches x (1 + {n_aug}) x {', '.join(facts['protocols'])}"
        f"  (rf {facts['rf']}, window {facts['window']})"
    )


def register(app: typer.Typer) -> None:
    """Add the ``augment`` group to the root app."""
    app.add_typer(augment_app, name="augment")
