"""``mitodet mine``: the paper's two negative-mining strategies (residual, hard)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

import typer

# Shared group: `residual` is added by mitodet.cli.mine (stain stage),
# `hard` by mitodet.cli.train (it retrains models).
mine_app = typer.Typer(help="Mine extra negatives: stain-residual mining and hard-negative mining.", no_args_is_help=True)


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given; folders expand to the images inside them (recursively, sorted)."""
    from mitodet.errors import MitodetError
    from mitodet.io.image import images_in

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = images_in(p)
            if not found:
                raise MitodetError(p, "folder holds no images (.tif/.png/.jpg)")
            out += found
        elif not p.exists():
            raise MitodetError(p, "file not found")
        else:
            out.append(p)
    return out


def load_labels(labels: Path, images: list[Path]) -> dict[Path, list]:
    """Labelled mitoses per image: a folder of <stem>.csv / <stem>.geojson point files,
    or one CSV table with an ``image`` column (matched by path, else by file name)."""
    from mitodet.data.schema import MITOTIC_FIGURE, Point
    from mitodet.errors import MitodetError
    from mitodet.io.points import parse_label, read_points_csv, read_points_geojson

    result: dict[Path, list] = {}
    if labels.is_dir():
        for im in images:
            for suffix, reader in ((".csv", read_points_csv), (".geojson", read_points_geojson), (".json", read_points_geojson)):
                f = labels / f"{im.stem}{suffix}"
                if f.is_file():
                    result[im] = [p for p in reader(f) if p.label == MITOTIC_FIGURE]
                    break
        return result
    if not labels.is_file():
        raise MitodetError(labels, "file not found")
    by_path = {im.resolve(): im for im in images}
    by_name = {im.name: im for im in images}
    with open(labels, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        xk, yk = ("x_px", "y_px") if "x_px" in fields else ("x", "y")
        if "image" not in fields or xk not in fields or yk not in fields:
            raise MitodetError(labels, f"needs columns image,x,y[,label] (found {','.join(fields) or 'none'})")
        for n, row in enumerate(reader, start=2):
            ref = Path(row["image"])
            ref_abs = ref if ref.is_absolute() else labels.parent / ref
            im = by_path.get(ref_abs.resolve()) or by_name.get(ref.name)
            if im is None:
                continue
            label = parse_label(row["label"], labels, f"line {n}: ") if row.get("label") else MITOTIC_FIGURE
            if label == MITOTIC_FIGURE:
                try:
                    result.setdefault(im, []).append(Point(float(row[xk]), float(row[yk]), label))
                except ValueError:
                    raise MitodetError(labels, f"line {n}: x/y not numbers") from None
    return result


@mine_app.command("residual")
def residual_cmd(
    images: list[Path] = typer.Argument(..., help="Unlabelled images, or folders of them."),
    out: Path = typer.Option(..., "--out", help="Negative-point table to write (CSV: image,x,y,label,score)."),
    mpp: Optional[float] = typer.Option(None, help="Pixel spacing µm/px; default: stored in the image, else 0.25."),
    per_image: int = typer.Option(5, "--per-image", min=1, help="Keep the top K maxima per image."),
    threshold: float = typer.Option(0.06, help="Minimum residual intensity (smoothed |residual| OD)."),
    sigma_um: float = typer.Option(2.0, help="Gaussian smoothing (µm): nucleus scale."),
    spacing_um: float = typer.Option(19.5, help="Minimum distance between mined points (µm, ~ one 78 px patch)."),
    labels: Optional[Path] = typer.Option(None, help="Labelled mitoses to keep away from: a folder of <stem>.csv/.geojson or a CSV with an image column."),
    min_distance_um: float = typer.Option(15.0, help="Minimum distance (µm) to a labelled mitosis."),
    patch: int = typer.Option(78, help="Patch size: mined points stay patch/2 px from the border."),
    sheet: Optional[Path] = typer.Option(None, help="Also write a contact-sheet PNG of the mined patches."),
    crop: int = typer.Option(96, help="Crop size (px) of each patch on the contact sheet."),
    beta: float = typer.Option(0.15, help="Tissue threshold: OD above this in every channel."),
    alpha: float = typer.Option(1.0, help="Robust angle percentile of Macenko."),
) -> None:
    """Mine negatives where the stain residual is high (pigment, ink, non-H&E absorbers) and write a point table."""
    from rich.console import Console
    from rich.progress import Progress

    from mitodet.data.schema import DEFAULT_MPP
    from mitodet.errors import MitodetError
    from mitodet.io.image import read_image
    from mitodet.mine.residual import ResidualParams, contact_sheet, crop_patch, mine_residual, write_negative_table
    from mitodet.stain import StainError

    console = Console(stderr=True)
    files = expand_images(images)
    exclude = load_labels(labels, files) if labels is not None else {}
    rows, patches, skipped = [], [], []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("residual mining", total=len(files))
        for f in files:
            rgb, spacing = read_image(f, mpp=mpp)
            spacing = spacing or DEFAULT_MPP
            params = ResidualParams(per_image=per_image, threshold=threshold, sigma_um=sigma_um, spacing_um=spacing_um,
                                    min_distance_um=min_distance_um, patch=patch, beta=beta, alpha=alpha)
            try:
                mined = mine_residual(rgb, spacing, params, exclude.get(f, ()))
            except StainError as err:
                skipped.append(f"{f}: {err.problem}")
                mined = []
            rows += [(f, m) for m in mined]
            if sheet is not None:
                patches += [(crop_patch(rgb, m.x, m.y, crop), f"{f.stem[:14]}\n{m.score:.3f} ({m.x:.0f},{m.y:.0f})")
                            for m in mined]
            progress.advance(task)
    n = write_negative_table(out, rows)
    per = {}
    for f, _ in rows:
        per[f] = per.get(f, 0) + 1
    Console().print(f"{n} residual negatives from {len(per)} of {len(files)} images -> {out}")
    for s in skipped:
        console.print(f"[yellow]skipped {s}[/yellow]")
    if sheet is not None:
        if patches:
            contact_sheet(sheet, patches)
            Console().print(f"contact sheet -> {sheet}")
        else:
            console.print("[yellow]nothing mined: no contact sheet written[/yellow]")
    if not files:
        raise MitodetError(None, "no images given")


def register(app: typer.Typer) -> None:
    """Add the ``mine`` group to the root app."""
    app.add_typer(mine_app, name="mine")
