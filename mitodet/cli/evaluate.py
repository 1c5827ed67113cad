"""``mitodet evaluate``: official MIDOG scoring of predictions against ground truth."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.markup import escape

from mitodet.cli import options
from mitodet.cli.ui import err_console, out_console, print_table
from mitodet.cli.ui import table as ui_table


def evaluate_cmd(
    truth: Path = typer.Option(
        ...,
        "--truth",
        "-t",
        help="MIDOG ground-truth JSON (2021/2022 or 2025 format, mm); or QuPath GeoJSON / CSV point files: "
        "a folder of <image>.geojson or <image>.csv, one CSV table with an image column, or one file "
        "for one image (pixels: give --mpp).",
    ),
    pred: Path = typer.Option(
        ...,
        "--pred",
        "-p",
        help="Predictions: predictions.json (grand-challenge), a folder of <image>.mitotic-figures.json "
        "(or <image>.geojson / <image>.csv, as detect writes them), or one such file.",
    ),
    out: Path = typer.Option(
        Path("evaluation"),
        "--out",
        "-o",
        metavar="DIR",
        help="Folder for metrics.json and pr_froc.png.",
        callback=options.out_dir,
    ),
    mpp: float = typer.Option(
        None,
        "--mpp",
        help="Pixel spacing (µm/px) of the images, to convert point files in pixels (GeoJSON, CSV x,y) to mm.",
        callback=options.mpp,
    ),
    strict: bool = typer.Option(
        False,
        "--strict/--no-strict",
        help="Apply the 2025 input checks (reject pixel coordinates, require name/probability) instead of warning.",
    ),
) -> None:
    """Score predictions exactly as the official MIDOG evaluator: pooled and per-domain precision,
    recall, F1 (7.5 µm radius, only "mitotic figure" points), AP and FROC; writes JSON and a PR/FROC plot.

    \fLong because of its option declarations and the printed table; the scoring is in mitodet.evaluate."""
    from mitodet.evaluate.midog import evaluate, write_evaluation
    from mitodet.io.atomic import remove_stale_temps

    result = evaluate(truth, pred, strict=strict, mpp=mpp)
    for w in result["warnings"]:
        err_console.print(f"[yellow]warning[/]: {escape(w)}", highlight=False)
    for r in result["results"]:
        for w in r["warnings"]:
            err_console.print(f"[yellow]warning[/]: {escape(r['image'])}: {escape(w)}", highlight=False)
    agg = result["aggregates"]
    from mitodet.evaluate.froc import MAX_FP

    cols = ["group", "TP", "FP", "FN", "precision", "recall", "F1", "AP", f"FROC-AUC/{MAX_FP:g}"]
    table = ui_table(f"MIDOG evaluation ({len(result['results'])} images)", cols, right=set(cols[1:]))
    groups = [""] + sorted({k[: -len("precision")] for k in agg if k.endswith("_precision")})
    for g in groups:
        f1 = agg["f1_score"] if g == "" else agg[f"{g}f1"]
        froc = agg[f"{g}froc_auc"]
        table.add_row(
            g.rstrip("_") or "overall",
            str(agg[f"{g}tp"]),
            str(agg[f"{g}fp"]),
            str(agg[f"{g}fn"]),
            f"{agg[f'{g}precision']:.4f}",
            f"{agg[f'{g}recall']:.4f}",
            f"{f1:.4f}",
            f"{agg[f'{g}AP']:.4f}",
            "n/a" if math.isnan(froc) else f"{froc / MAX_FP:.3f}",
        )
    print_table(table)
    out_console.print(_f1_interval_line(result), highlight=False, markup=False)
    err_console.print(
        f"FROC-AUC/{MAX_FP:g}: mean sensitivity over 0-{MAX_FP:g} false positives per image\n"
        f"(1 = perfect; metrics.json keeps the official value, {MAX_FP:g} times this)",
        highlight=False,
        markup=False,
    )
    n_truth, n_pred = agg["tp"] + agg["fn"], agg["tp"] + agg["fp"]
    if min(n_truth, n_pred) < FEW_POINTS:
        err_console.print(
            f"note: AP and FROC rest on few points ({n_truth} true, {n_pred} predicted\n"
            "mitotic figures): treat them as rough",
            highlight=False,
            markup=False,
        )
    remove_stale_temps(out)  # hidden temporary files of a killed earlier run
    metrics, plot = write_evaluation(result, out)
    out_console.print(f"wrote {metrics} and {plot}")


FEW_POINTS = 20  # below this many true or predicted figures, AP and FROC are noted as rough


def _f1_interval_line(result: dict) -> str:
    """The overall F1 with its 95 % bootstrap interval over the images (how sure it is)."""
    from mitodet.evaluate.bootstrap import f1_interval

    per = [
        (m["true_positives"], m["false_positives"], m["false_negatives"])
        for m in (r["metrics"] for r in result["results"])
    ]
    lo, hi = f1_interval(per)
    f1 = result["aggregates"]["f1_score"]
    if lo != lo:  # NaN
        return f"F1 {f1:.4f}; no interval (one image cannot be resampled)"
    return f"F1 {f1:.4f}; 95 % interval {lo:.3f}-{hi:.3f} (bootstrap over the {len(per)} images)"


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("evaluate")(evaluate_cmd)
