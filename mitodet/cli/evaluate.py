"""``mitodet evaluate``: official MIDOG scoring of predictions against ground truth."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table



def evaluate_cmd(
    truth: Path = typer.Option(..., "--truth", "-t", help="MIDOG ground-truth JSON (2021/2022 or 2025 format)."),
    pred: Path = typer.Option(..., "--pred", "-p", help="predictions.json (grand-challenge), a folder of "
                              "<image>.mitotic-figures.json files, or one mitotic-figures.json."),
    out: Path = typer.Option(Path("evaluation"), "--out", "-o", help="Folder for metrics.json and pr_froc.png."),
    strict: bool = typer.Option(False, "--strict", help="Apply the 2025 input checks (reject pixel "
                                "coordinates, require name/probability) instead of warning."),
) -> None:
    """Score predictions exactly as the official MIDOG evaluator: pooled and per-domain precision,
    recall, F1 (7.5 µm radius, only "mitotic figure" points), AP and FROC; writes JSON and a PR/FROC plot."""
    from mitodet.evaluate.midog import RADIUS_MM, evaluate
    from mitodet.evaluate.plots import plot_pr_froc
    from mitodet.io.atomic import write_text

    console = Console()
    result = evaluate(truth, pred, strict=strict)
    for r in result["results"]:
        for w in r["warnings"]:
            console.print(f"[yellow]warning[/]: {r['image']}: {w}")
    agg = result["aggregates"]
    table = Table(title=f"MIDOG evaluation ({len(result['results'])} images)")
    for col in ("group", "TP", "FP", "FN", "precision", "recall", "F1", "AP", "FROC-AUC"):
        table.add_column(col, justify="left" if col == "group" else "right", no_wrap=True)
    groups = [""] + sorted({k[: -len("precision")] for k in agg if k.endswith("_precision")})
    for g in groups:
        f1 = agg["f1_score"] if g == "" else agg[f"{g}f1"]
        froc = agg[f"{g}froc_auc"]
        table.add_row(g.rstrip("_") or "overall", str(agg[f"{g}tp"]), str(agg[f"{g}fp"]), str(agg[f"{g}fn"]),
                      f"{agg[f'{g}precision']:.4f}", f"{agg[f'{g}recall']:.4f}", f"{f1:.4f}",
                      f"{agg[f'{g}AP']:.4f}", "n/a" if math.isnan(froc) else f"{froc:.3f}")
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    doc = json.loads(json.dumps(result, default=float).replace("NaN", "null"))
    write_text(out / "metrics.json", json.dumps(doc, indent=2) + "\n")
    gts = [r["gt"] for r in result["results"]]
    preds = [[[x, y, p] for x, y, _z, _c, p in r["pred"]] for r in result["results"]]
    plot_pr_froc(gts, preds, RADIUS_MM, out / "pr_froc.png",
                 title=f"F1 {agg['f1_score']:.3f}  AP {agg['AP']:.3f}")
    console.print(f"wrote {out / 'metrics.json'} and {out / 'pr_froc.png'}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("evaluate")(evaluate_cmd)
