"""``mitodet mine``: the paper's two negative-mining strategies (residual, hard)."""

from __future__ import annotations

from pathlib import Path

import typer

from mitodet.cli import options
from mitodet.cli.ui import err_console, out_console, progress

mine_app = options.group("Mine extra negatives: stain-residual mining and hard-negative mining.")

_POSITIVE = options.number(0, lo_open=True)


@mine_app.command("residual")
def residual_cmd(
    images: list[Path] = typer.Argument(..., help="Unlabelled images, or folders of them."),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        metavar="FILE",
        help="Negative-point table to write (CSV: image,x,y,label,score).",
        callback=options.out_file,
    ),
    mpp: float | None = typer.Option(
        None,
        help="Pixel spacing µm/px of the images (0.05-20); required where the file stores none (PNG, JPEG, "
        "TIFF without resolution tags), as for detect.",
        callback=options.mpp,
    ),
    per_image: int = typer.Option(
        5, "--per-image", help="Keep the top N maxima per image (>= 1).", callback=options.positive_int
    ),
    threshold: float = typer.Option(
        0.06, help="Minimum residual intensity (smoothed |residual| OD, >= 0).", callback=options.number(0)
    ),
    sigma_um: float = typer.Option(2.0, help="Gaussian smoothing (µm, > 0): nucleus scale.", callback=_POSITIVE),
    spacing_um: float = typer.Option(
        19.5, help="Minimum distance between mined points (µm, > 0; ~ one 78 px patch).", callback=_POSITIVE
    ),
    labels: Path | None = typer.Option(
        None, help="Labelled mitoses to keep away from: a folder of <stem>.csv/.geojson or a CSV with an image column."
    ),
    min_distance_um: float = typer.Option(
        15.0, help="Minimum distance (µm, >= 0) to a labelled mitosis.", callback=options.number(0)
    ),
    patch: int = typer.Option(
        78,
        help="Patch size (2-1024 px): mined points stay patch/2 px from the border.",
        callback=options.number(2, 1024, integer=True),
    ),
    sheet: Path | None = typer.Option(
        None, metavar="FILE", help="Also write a contact-sheet PNG of the mined patches.", callback=options.out_file
    ),
    crop: int = typer.Option(
        96,
        help="Crop size (8-512 px) of each patch on the contact sheet.",
        callback=options.number(8, 512, integer=True),
    ),
    beta: float = typer.Option(
        0.15, help="Tissue threshold: OD above this in every channel (> 0).", callback=_POSITIVE
    ),
    alpha: float = typer.Option(
        1.0, help="Robust angle percentile of Macenko (0 <= alpha < 50).", callback=options.number(0, 50, hi_open=True)
    ),
    quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bar."),
) -> None:
    """Mine negatives where the stain residual is high (pigment, ink, non-H&E absorbers) and write a point table.

    Training reads the table as extra negatives (data.negatives in a training config).

    \fLong because of its option declarations; the mining is in mitodet.mine."""
    from mitodet.io.atomic import remove_stale_temps
    from mitodet.io.image import expand_images
    from mitodet.io.points import read_mitoses_for
    from mitodet.mine.residual import ResidualParams, mine_files

    files = expand_images(images)
    for folder in {out.parent, *([sheet.parent] if sheet is not None else [])}:
        remove_stale_temps(folder)  # hidden temporary files of a killed earlier run
    exclude = read_mitoses_for(labels, files) if labels is not None else {}
    if labels is not None and not exclude:
        err_console.print(
            f"[yellow]warning[/]: --labels {labels}: no labelled mitosis matches any of the {len(files)} image(s) "
            "(files are matched by name); nothing is kept away from",
            highlight=False,
        )
    params = ResidualParams(
        per_image=per_image,
        threshold=threshold,
        sigma_um=sigma_um,
        spacing_um=spacing_um,
        min_distance_um=min_distance_um,
        patch=patch,
        beta=beta,
        alpha=alpha,
    )
    with progress(transient=True, disable=quiet) as bar:
        task = bar.add_task("residual mining", total=len(files))
        run = mine_files(
            files,
            out,
            params,
            mpp=mpp,
            exclude=exclude,
            sheet=sheet,
            sheet_crop=crop,
            on_image=lambda _f: bar.advance(task),
        )
    out_console.print(f"{run.rows} residual negatives from {len(run.per_image)} of {run.images} images -> {out}")
    for s in run.skipped:
        err_console.print(f"[yellow]skipped {s}[/yellow]")
    if run.sheet is not None:
        out_console.print(f"contact sheet -> {run.sheet}")
    elif sheet is not None:
        err_console.print("[yellow]nothing mined: no contact sheet written[/yellow]")


@mine_app.command("hard")
def hard_cmd(
    run: Path = typer.Argument(..., help="A finished training run folder (with best.pt)."),
    rounds: int = typer.Option(
        3, "--rounds", help="At most this many retraining rounds (>= 1).", callback=options.positive_int
    ),
    drop_quantile: float = typer.Option(
        0.5,
        "--drop-quantile",
        help="Drop this fraction of the easiest negatives per round (0 < q < 1).",
        callback=options.fraction,
    ),
    patience: int = typer.Option(
        1,
        "--patience",
        help="Stop after this many rounds without a higher val F1 (>= 1).",
        callback=options.positive_int,
    ),
    from_scratch: bool = typer.Option(
        False,
        "--from-scratch/--no-from-scratch",
        help="Retrain each round from scratch (default: from the previous best.pt).",
    ),
    set_: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="Override settings of the retraining rounds (e.g. train.epochs=5)."
    ),
    max_minutes: float = typer.Option(
        None, "--max-minutes", help="Time budget of each round in minutes (> 0).", callback=options.minutes
    ),
    quiet: bool = typer.Option(
        False, "--quiet/--no-quiet", "-q", help="No progress bar and no per-epoch lines (warnings still show)."
    ),
) -> None:
    """Hard-negative mining: score every training negative, keep the hardest, retrain; repeat while val F1 rises."""
    from mitodet.cli.train import train_progress
    from mitodet.io.atomic import remove_stale_temps
    from mitodet.mine.hard import hard_negative_mining
    from mitodet.model import load_checkpoint

    if (run / "best.pt").is_file():
        load_checkpoint(run / "best.pt")  # checked (weights only, no code) before the data loads
        remove_stale_temps(run)  # hidden temporary files of a killed earlier run

    with train_progress(quiet) as bars:
        result = hard_negative_mining(
            run,
            rounds=rounds,
            drop_quantile=drop_quantile,
            patience=patience,
            from_scratch=from_scratch,
            overrides=set_,
            max_minutes=max_minutes,
            on_step=bars.on_step,
            on_epoch=bars.on_epoch,
            on_val=bars.on_val,
        )
    out_console.print(
        f"hard mining {run}: best round {result.best_round} (val F1 {result.best_f1:.3f}); "
        f"table {result.table}, best model {result.best_checkpoint}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``mine`` group to the root app."""
    app.add_typer(mine_app, name="mine")
