"""``mitodet train-atypical`` and ``mitodet classify``: the atypical-vs-normal classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from mitodet.cli import options
from mitodet.cli.ui import out_console
from mitodet.errors import MitodetError


def train_atypical_cmd(
    config: str = typer.Argument(
        None, help="YAML config, or the name of a bundled config (atypical); paths relative to the cwd."
    ),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a setting: --set train.epochs=10."),
    resume: Path = options.RESUME,
    run_dir: Path = options.RUN_DIR,
    max_minutes: float = typer.Option(
        None,
        "--max-minutes",
        help="Time budget in minutes (> 0): stop after the epoch that crosses it.",
        callback=options.minutes,
    ),
    force: bool = options.FORCE,
    quiet: bool = typer.Option(
        False, "--quiet/--no-quiet", "-q", help="No progress bar (the epoch lines on stdout still show)."
    ),
) -> None:
    """Train the atypical-vs-normal classifier on labelled crops; best.pt is the epoch of the best
    validation balanced accuracy, with its threshold."""
    import time

    from mitodet.cli.train import train_progress
    from mitodet.resources import config_path
    from mitodet.train.atypical import train_atypical
    from mitodet.train.atypical_config import load_atypical_config

    if resume is not None:
        cfg = load_atypical_config(resume / "config.yaml", set_, check_paths=False)
        run_dir = resume
    elif config is None:
        raise MitodetError("mitodet train-atypical", "give a CONFIG.yaml or --resume RUN")
    else:
        options.refuse_held_run(run_dir, force)
        cfg = load_atypical_config(config_path(config), set_)
        if run_dir is None:
            run_dir = Path(cfg.out) / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"

    def line(row: dict) -> None:
        out_console.print(
            f"epoch {row['epoch']:>3}  loss {row['train_loss']}  val BA {row['val_ba']}  AUROC {row['val_auroc']}"
            f"  threshold {row['threshold']}  ({row['seconds']} s)",
            highlight=False,
        )

    with train_progress(quiet) as bars:
        s = train_atypical(cfg, run_dir, resume=resume is not None, max_minutes=max_minutes, on_epoch=line,
                           on_start=bars.on_epoch, on_step=bars.on_step, on_val=bars.on_val)  # fmt: skip
    per = ", ".join(f"{k} {v['balanced_accuracy']:.3f}" for k, v in s.get("per", {}).items())
    out_console.print(
        f"run {run_dir}: best epoch {s.get('epoch')}, mean balanced accuracy {s.get('balanced_accuracy', 0):.3f}"
        f" ({per}) at threshold {s.get('threshold', 0):.4f}",
        highlight=False,
    )


def classify_cmd(
    crops: list[Path] = typer.Argument(
        ...,
        help="Mitosis-centred crops: image files, or folders (searched recursively).",
        callback=options.inputs,
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", metavar="DIR", help="Output folder (classify.csv).", callback=options.out_dir
    ),  # fmt: skip
    mpp: float = typer.Option(
        None, "--mpp", help="Pixel spacing of the crops, µm/px (default: stored in each file).", callback=options.mpp
    ),
    truth: Path = typer.Option(
        None,
        "--truth",
        help="Score the calls: a CSV table file,atypical (true/false), or a folder whose crops lie "
        "in sub-folders named Atypical/ and Normal/.",
    ),
    model: Path = typer.Option(
        None, "--model", "-m", metavar="FILE", help="Classifier checkpoint (default: the bundled one)."
    ),  # fmt: skip
    threshold: float = typer.Option(
        None,
        "--threshold",
        help="P(atypical) from which a crop is atypical (default: the calibrated one).",
        callback=options.threshold,
    ),
    quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bar."),
) -> None:
    """Classify mitosis-centred crops as atypical or normal; writes OUT/classify.csv (file,
    atypical_probability, label) and, with --truth, balanced accuracy, sensitivity, specificity,
    AUROC and the confusion table (OUT/classify-metrics.json).

    \fLong because of its option declarations; the work is in mitodet.classify."""
    import json

    from mitodet.classify.crops import classify_crops, find_crops, read_truth
    from mitodet.classify.metrics import scores
    from mitodet.classify.predict import AtypicalClassifier
    from mitodet.cli.ui import print_table, progress, table
    from mitodet.errors import printable
    from mitodet.io.atomic import write_csv, write_text

    clf = AtypicalClassifier.from_checkpoint(model)
    if threshold is not None:
        clf.threshold = threshold
    files = find_crops(crops)
    labels, unmatched = read_truth(truth, files) if truth is not None else ({}, [])
    if truth is not None and not labels:
        raise MitodetError(truth, "gives no label to any of the crops (match by path, or by a unique file name)")
    with progress(transient=True, disable=quiet) as bar:
        task = bar.add_task("crops", total=len(files))
        p = classify_crops(clf, files, mpp, on_done=lambda n: bar.advance(task, n))
    calls = [clf.label(float(v)) for v in p]
    rows = [[str(f), f"{v:.6f}", c] for f, v, c in zip(files, p, calls, strict=True)]
    write_csv(out / "classify.csv", ["file", "atypical_probability", "label"], rows)
    n_atyp = calls.count("atypical")
    out_console.print(
        f"{len(files)} crop(s): {n_atyp} atypical, {len(files) - n_atyp} normal "
        f"(P(atypical) >= {clf.threshold:.4f}); wrote {printable(str(out / 'classify.csv'))}",
        highlight=False,
        markup=False,
    )
    if truth is None:
        return
    known = [i for i, f in enumerate(files) if f in labels]
    y = np.array([labels[files[i]] for i in known], bool)
    s = scores(p[known], y, clf.threshold)
    c = s["confusion"]
    t = table(f"atypical vs normal, {len(known)} crops with a truth label", ["", "called atypical", "called normal"])
    t.add_row(f"atypical ({s['atypical']})", str(c["tp"]), str(c["fn"]))
    t.add_row(f"normal ({s['normal']})", str(c["fp"]), str(c["tn"]))
    print_table(t)
    out_console.print(
        f"balanced accuracy {s['balanced_accuracy']:.3f}, sensitivity {s['sensitivity']:.3f}, "
        f"specificity {s['specificity']:.3f}, AUROC {s['auroc']:.3f}",
        highlight=False,
    )
    missing = len(files) - len(known)
    if missing:
        out_console.print(f"note: {missing} crop(s) have no truth label and are not scored", highlight=False)
    if unmatched:
        out_console.print(f"note: {len(unmatched)} truth row(s) match no crop (first: {printable(unmatched[0])})")
    doc = {"threshold": clf.threshold, "model": str(clf.path), "crops": len(files), "scored": len(known), **s}
    write_text(out / "classify-metrics.json", json.dumps(doc, indent=1) + "\n")


def register(app: typer.Typer) -> None:
    """Add ``classify`` and ``train-atypical`` to the root app."""
    app.command("classify")(classify_cmd)
    app.command("train-atypical")(train_atypical_cmd)
