"""``mitodet data``: dataset statistics, train/validation splits and image/slide inspection."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from mitodet.cli import options
from mitodet.cli.ui import err_console, out_console, print_table
from mitodet.cli.ui import table as ui_table

data_app = options.group("Inspect annotation files, crop sets and images; write train/validation splits.")


def _keys(by: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k.strip() for k in by.split(",") if k.strip()) if by else default


def _check_keys(ds, keys) -> None:
    from mitodet.data.stats import known_keys
    from mitodet.errors import MitodetError

    known = known_keys(ds)
    for k in keys:
        if k not in known:
            raise MitodetError("--by", f"unknown domain key {k!r}; this dataset has {', '.join(known)}")


def _count_table(title: str, key: str, rows, extra: dict | None = None) -> Table:
    counts = ("images", "labelled", "mitotic figures", "imposters")
    table = ui_table(title, [key, *counts], right=set(counts))
    for r in rows:
        style = "bold" if r.domain == "total" else None
        table.add_row(r.domain, str(r.images), str(r.labelled), str(r.mitoses), str(r.imposters), style=style)
    return table


@data_app.command("stats")
def stats(
    path: Path = typer.Argument(
        ...,
        help="Annotation file (MIDOG.json, MIDOG++.json, MIDOG 2022 CSV) or data folder "
        "(midog21_crops, icpr2012_patches, tissue).",
    ),
    by: str = typer.Option(
        None,
        "--by",
        metavar="KEYS",
        help="Domain key(s) to group by, comma-separated "
        "(default: the source's natural domain, e.g. tumor_type,scanner).",
    ),
) -> None:
    """Print per-domain counts of images, mitotic figures and imposters."""
    from mitodet.data.load import load_any, natural_keys
    from mitodet.data.stats import domain_counts

    ds = load_any(path)
    keys = _keys(by, natural_keys(ds))
    _check_keys(ds, keys)
    for key in keys:
        rows = domain_counts(ds, key)
        print_table(_count_table(f"{ds.name}: {path.name} by {key} ({len(rows) - 1} domains)", key, rows))


@data_app.command("split")
def split(
    path: Path = typer.Argument(..., help="Annotation file or data folder (as for `mitodet data stats`)."),
    out: Path = typer.Option(
        ..., "--out", "-o", metavar="FILE", help="Split JSON to write.", callback=options.out_file
    ),  # fmt: skip
    val_fraction: float = typer.Option(
        0.2, "--val-fraction", help="Share of image groups for validation (0 < f < 1).", callback=options.fraction
    ),
    seed: int = typer.Option(
        0, "--seed", help="Random seed >= 0 (the split is deterministic for a seed).", callback=options.count
    ),
    by: str = typer.Option(
        None,
        "--by",
        metavar="KEYS",
        help="Domain key(s) to stratify by, comma-separated (default: the source's natural domain).",
    ),
) -> None:
    """Write an 80/20 train/validation split by image (group), stratified by domain and mitosis count."""
    from mitodet.data.load import load_any, natural_keys
    from mitodet.data.split import split_dataset, write_split
    from mitodet.data.stats import domain_counts
    from mitodet.schema import IMPOSTER, MITOTIC_FIGURE, Dataset

    ds = load_any(path)
    unlabelled = [r for r in ds.images if not r.labelled]
    if unlabelled:  # no annotation at all means "unknown", not "no mitosis": neither train nor val
        ds = Dataset(ds.name, [r for r in ds.images if r.labelled])
        err_console.print(
            f"note: {len(unlabelled)} image(s) without any annotation left out of the split "
            f"(unlabelled, not mitosis-free): {escape(', '.join(r.id for r in unlabelled[:3]))}"
            + (", ..." if len(unlabelled) > 3 else "")
        )
    keys = _keys(by, natural_keys(ds))
    _check_keys(ds, keys)
    train, val = split_dataset(ds, val_fraction=val_fraction, seed=seed, stratify=keys)
    tr = {r.domain: r for r in domain_counts(ds, keys[0], train)}
    va = {r.domain: r for r in domain_counts(ds, keys[0], val)}
    counts = ("train images", "val images", "train MF", "val MF", "val MF %")
    table = ui_table(
        f"{ds.name} split (seed {seed}, stratified by {', '.join(keys)} and mitosis count)",
        [keys[0], *counts],
        right=set(counts),
    )
    names = [k for k in sorted(set(tr) | set(va)) if k != "total"] + ["total"]
    for name in names:
        t, v = tr.get(name), va.get(name)
        ti, vi = (t.images if t else 0), (v.images if v else 0)
        tm, vm = (t.mitoses if t else 0), (v.mitoses if v else 0)
        pct = f"{100 * vm / (tm + vm):.1f}" if tm + vm else "-"
        table.add_row(name, str(ti), str(vi), str(tm), str(vm), pct, style="bold" if name == "total" else None)
    print_table(table)
    by_id = ds.by_id()
    write_split(
        out,
        train,
        val,
        source=str(path),
        dataset=ds.name,
        seed=seed,
        val_fraction=val_fraction,
        stratify=list(keys),
        mitoses={
            "train": sum(len(by_id[i].of(MITOTIC_FIGURE)) for i in train),
            "val": sum(len(by_id[i].of(MITOTIC_FIGURE)) for i in val),
        },
        imposters={
            "train": sum(len(by_id[i].of(IMPOSTER)) for i in train),
            "val": sum(len(by_id[i].of(IMPOSTER)) for i in val),
        },
    )
    out_console.print(f"wrote {out} ({len(train)} train / {len(val)} val images)")


@data_app.command("image")
def image(
    path: Path = typer.Argument(..., help="Image or whole-slide file (TIFF, SVS, NDPI, PNG, JPEG)."),
    mpp: float = typer.Option(
        None, "--mpp", help="Pixel spacing in µm/px (required when the file stores none).", callback=options.mpp
    ),
    target_mpp: float = typer.Option(
        0.25, "--target-mpp", help="Spacing the pipeline reads at (µm/px).", callback=options.mpp
    ),
) -> None:
    """Show an image's size, pixel spacing and pyramid levels, and how it is read at the target spacing."""
    import warnings

    from mitodet.io.slide import open_slide

    with open_slide(path, mpp=mpp) as slide:
        cols = ("level", "width", "height", "downsample", "µm/px")
        table = ui_table(f"{path.name} ({slide.backend})", cols, right=set(cols))
        for i, ((w, h), ds) in enumerate(zip(slide.level_dimensions, slide.level_downsamples, strict=False)):
            table.add_row(str(i), str(w), str(h), f"{ds:.3f}", f"{slide.mpp * ds:.4f}")
        print_table(table)
        tw, th = slide.size_at(target_mpp)
        out_console.print(
            f"spacing {slide.mpp:.4f} µm/px ({'given' if mpp else 'stored'}); at {target_mpp} µm/px: "
            f"{tw}x{th} px from level {slide.best_level(target_mpp)}"
        )
        if slide.mpp / target_mpp > 1.02:
            err_console.print(
                f"[yellow]warning[/]: reading at {target_mpp} µm/px upsamples x{slide.mpp / target_mpp:.2f}"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            slide.read_region(0, 0, min(tw, 64), min(th, 64), target_mpp)  # proves the pixels decode


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.add_typer(data_app, name="data")
