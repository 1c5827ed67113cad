"""``mitodet stain``: Macenko stain vectors and H / E / residual channel pictures."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from mitodet.cli import options
from mitodet.cli.ui import err_console, out_console, print_table
from mitodet.cli.ui import table as ui_table
from mitodet.errors import MitodetError

stain_app = options.group("Macenko stain unmixing: stain vectors and H / E / residual channels.")

_BETA = typer.Option(
    0.15, help="Tissue threshold: OD above this in every channel (> 0).", callback=options.number(0, lo_open=True)
)
_ALPHA = typer.Option(
    1.0,
    help="Robust angle percentile (alpha, 100-alpha), 0 <= alpha < 50.",
    callback=options.number(0, 50, hi_open=True),
)


def _vec(v) -> str:
    return " ".join(f"{x:.2f}" for x in v)


@stain_app.command("unmix")
def unmix_cmd(
    image: Path = typer.Argument(..., help="RGB image (TIFF / PNG / JPEG)."),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        metavar="DIR",
        help="Folder for <stem>_hematoxylin/_eosin/_residual/_legend.png.",
        callback=options.out_dir,
    ),
    beta: float = _BETA,
    alpha: float = _ALPHA,
    residual_scale: float = typer.Option(
        0.25, help="Residual OD at which its colour map saturates (> 0).", callback=options.number(0, lo_open=True)
    ),
) -> None:
    """Unmix IMAGE into hematoxylin, eosin and residual and write them as PNGs beside a colour legend."""
    from mitodet.io.atomic import remove_stale_temps
    from mitodet.stain.render import unmix_file

    remove_stale_temps(out)  # hidden temporary files of a killed earlier run

    sv, (q50, q99, q100), paths = unmix_file(image, out, beta, alpha, residual_scale)
    out_console.print(
        f"H {_vec(sv.hematoxylin)}  E {_vec(sv.eosin)}  residual {_vec(sv.residual)}  "
        f"H-E angle {sv.angle_deg:.1f} deg  tissue {100 * sv.tissue_fraction:.1f}%"
    )
    out_console.print(f"|residual| OD: median {q50:.3f}, 99th percentile {q99:.3f}, max {q100:.3f}")
    for p in paths:
        out_console.print(f"wrote {p}")


@stain_app.command("vectors")
def vectors_cmd(
    images: list[Path] = typer.Argument(..., help="Images to estimate stain vectors for."),
    mpp: float | None = typer.Option(
        None, help="Override the stored pixel spacing (µm/px), shown only.", callback=options.mpp
    ),
    beta: float = _BETA,
    alpha: float = _ALPHA,
) -> None:
    """Print each image's Macenko stain vectors (OD, R G B) to compare scanners and stainings."""
    from mitodet.io.image import read_image
    from mitodet.stain import macenko_vectors

    cols = ("image", "µm/px", "tissue %", "hematoxylin", "eosin", "residual", "H-E angle")
    table = ui_table("Macenko stain vectors (unit OD directions, R G B)", cols, right=set(cols[1:]))
    failed: list[MitodetError] = []
    for path in images:
        try:
            rgb, spacing = read_image(path, mpp=mpp, check_spacing=False)  # spacing is only shown
            sv = macenko_vectors(rgb, beta=beta, alpha=alpha)
        except MitodetError as err:
            failed.append(MitodetError(path, err.problem))
            table.add_row(path.name, "", "", f"[red]{escape(err.problem)}[/red]", "", "", "")
            continue
        table.add_row(
            path.name,
            "-" if spacing is None else f"{spacing:.4f}",
            f"{100 * sv.tissue_fraction:.1f}",
            _vec(sv.hematoxylin),
            _vec(sv.eosin),
            _vec(sv.residual),
            f"{sv.angle_deg:.1f}",
        )
    print_table(table)
    if failed:
        for err in failed:
            err_console.print(f"error: {err}", highlight=False, markup=False)
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the ``stain`` group to the root app."""
    app.add_typer(stain_app, name="stain")
