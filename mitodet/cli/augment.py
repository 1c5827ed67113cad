"""``mitodet augment preview``: look at the augmentation protocols on real patches."""

from __future__ import annotations

from pathlib import Path

import typer

from mitodet.cli.ui import out_console

augment_app = typer.Typer(help="Augmentation protocol of the paper (CA-RGB / CA-OD).", no_args_is_help=True)


@augment_app.command("preview")
def preview(
    config: Path = typer.Option(
        Path("configs/default-ca-rgb.yaml"), help="training config (its augment section and labelled data)"
    ),
    protocol: str = typer.Option("both", help="ca-rgb, ca-od or both"),
    out: Path = typer.Option(Path("augment_preview.png"), help="PNG to write"),
    n: int = typer.Option(8, help="number of real patches (rows)"),
    n_aug: int = typer.Option(7, help="augmented versions per patch and protocol"),
    negatives: bool = typer.Option(False, help="show negative patches instead of mitoses"),
    seed: int = typer.Option(0),
    set_: list[str] = typer.Option([], "--set", help="override a config setting, e.g. augment.rgb.scale=0.2"),
) -> None:
    """Write a PNG grid: each row a real patch (first column) and its augmentations per protocol."""
    from mitodet.augment.preview import write_png
    from mitodet.train.preview import augment_preview

    img, facts = augment_preview(config, protocol, n, n_aug, negatives, seed, set_)
    write_png(out, img)
    out_console.print(
        f"wrote {out}: {facts['patches']} patches x (1 + {n_aug}) x {', '.join(facts['protocols'])}"
        f"  (rf {facts['rf']}, window {facts['window']})"
    )


def register(app: typer.Typer) -> None:
    """Add the ``augment`` group to the root app."""
    app.add_typer(augment_app, name="augment")
