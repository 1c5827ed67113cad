"""``mitodet train``: the paper's training (``mine hard`` lives with the other mining commands)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from mitodet.cli import options
from mitodet.cli.ui import Bars, err_console, out_console, print_table, progress, setup_logging, table
from mitodet.errors import MitodetError


class TrainBars:
    """The bars of a training run on one rich Progress: loading the images; the steps of the
    current epoch, headed ``epoch N/M`` and started afresh each epoch (its clock and ETA are
    that epoch's own, not frozen at the end of the first); and validation, on a bar of its own
    while it runs. Its methods are the library's progress callbacks (:attr:`callbacks`)."""

    def __init__(self, bar: Bars):
        self.bar = bar
        self.load = bar.add_task("loading images", total=None)
        self.steps = bar.add_task("train", total=None, visible=False)
        self.val = bar.add_task("validation", total=None, visible=False)
        self.epoch = ""  # "epoch N/M " once the library says which
        self._step = 0
        self._stage: str | None = None

    @property
    def callbacks(self) -> dict:
        """Keyword arguments of :func:`mitodet.train.run.train` for these bars."""
        return {"on_image": self.on_image, "on_epoch": self.on_epoch, "on_step": self.on_step, "on_val": self.on_val}

    def on_image(self, done: int, total: int) -> None:
        self.bar.update(self.load, completed=done, total=total, visible=done < total)

    def on_epoch(self, epoch: int, epochs: int) -> None:
        self.epoch = f"epoch {epoch}/{epochs} "
        self._restart()

    def _restart(self) -> None:
        self.bar.update(self.load, visible=False)
        self.bar.update(self.val, visible=False)
        self.bar.reset(self.steps, total=None, visible=True, description=f"{self.epoch}train")
        self._step, self._stage = 0, None

    def on_step(self, step: int, total: int, loss: float, rate: float) -> None:
        if step < self._step or self._stage is not None:  # a new epoch for a caller that gives no on_epoch
            self._restart()
        self._step = step
        desc = f"{self.epoch}loss {loss:.4f}  {rate:.0f} samples/s"
        self.bar.update(self.steps, completed=step, total=total, visible=True, description=desc)

    def on_val(self, what: str, done: int, total: int) -> None:
        if what != self._stage:
            self._stage = what
            desc = f"{self.epoch}validation ({what})"
            self.bar.reset(self.val, total=total, completed=done, visible=True, description=desc)
        else:
            self.bar.update(self.val, completed=done, total=total)


@contextlib.contextmanager
def train_progress(quiet: bool, epoch_lines: bool = True):
    """Bars on stderr for a training run (:class:`TrainBars`), none when ``quiet``; yields them.
    mitodet's INFO records (one line per epoch) show too unless ``quiet`` or not ``epoch_lines``."""
    setup_logging(quiet or not epoch_lines)
    with progress(transient=True, disable=quiet) as bar:
        yield TrainBars(bar)


def train_cmd(
    config: str = typer.Argument(
        None,
        help="YAML config file, or the name of a bundled config (default-ca-rgb, default-ca-od, dense-ca-rgb, ...; "
        "see configs/); paths inside it are relative to the cwd.",
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        help="Override a setting: --set optim.lr=0.01 --set data.exclude.scanner=[Aperio CS2].",
    ),
    resume: Path = options.RESUME,
    run_dir: Path = options.RUN_DIR,
    max_minutes: float = typer.Option(
        None,
        "--max-minutes",
        help="Time budget in minutes (> 0): stop after the epoch that would cross it.",
        callback=options.minutes,
    ),
    quiet: bool = typer.Option(
        False, "--quiet/--no-quiet", "-q", help="No progress bar and no per-epoch lines (warnings still show)."
    ),
    force: bool = options.FORCE,
    data_root: Path = typer.Option(
        None,
        "--data-root",
        metavar="DIR",
        help="The data folder that ../shared/data/... in the config means (default $MITODET_DATA).",
    ),
) -> None:
    """Train the P4 ResNet as in the paper; writes a run folder (config, metrics.csv, loss.png, best.pt, last.pt)."""
    from mitodet.io.atomic import remove_stale_temps
    from mitodet.resources import config_path
    from mitodet.train.config import load_config, override_config
    from mitodet.train.run import train
    from mitodet.train.rundir import load_state, read_run_config

    if resume is not None:
        cfg = override_config(read_run_config(resume), set_, str(resume / "config.yaml"))
        load_state(resume)  # last.pt checked (weights only, no code) before the data loads
        for p in remove_stale_temps(resume):
            err_console.print(f"removed {p.name} (left by an interrupted run)", highlight=False, markup=False)
        run_dir = resume
    elif config is None:
        raise MitodetError("mitodet train", "give a CONFIG.yaml or --resume RUN")
    else:
        cfg = load_config(config_path(config), set_, data_root=data_root)
        options.refuse_held_run(run_dir, force)
    with train_progress(quiet) as bars:
        summary = train(cfg, run_dir=run_dir, resume=resume is not None, max_minutes=max_minutes, **bars.callbacks)
    best = (
        f"best val loss {summary.best_val_loss:.4f}, F1 {summary.best_val_f1:.3f} (epoch {summary.best_epoch})"
        if summary.best_val_loss is not None
        else "no validation split"
    )
    patience = (Path(summary.run_dir) / "patience-exhausted").is_file()
    stop = ""
    if summary.stopped_early:
        stop = ", stopped: no better validation (val.patience)" if patience else ", stopped by the time budget"
    out_console.print(f"run {summary.run_dir}: {summary.epochs} epochs{stop}; {best}")


def calibrate_cmd(
    run: Path = typer.Argument(..., help="Training run folder (runs/NAME) with best.pt and its validation split."),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", metavar="FILE", help="Checkpoint to calibrate (default RUN/best.pt)."
    ),  # fmt: skip
    rule: str = typer.Option(
        None,
        "--rule",
        metavar="RULE",
        help="Rule: pooled_f1 (the paper), f1_density (F1 at the run's val.density mitoses/mm²; "
        "the default for runs that validated by detection) or f1_mean (its mean with the official F1 "
        "of the validation side's whole labelled fields; the default for runs with val.select: f1_mean).",
    ),
    device: str = typer.Option(
        "cpu", "--device", metavar="DEVICE", help="Device: cpu, cuda or cuda:N.", callback=options.device
    ),  # fmt: skip
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch (>= 1).", callback=options.threads),
    limit: int = typer.Option(
        None, "--limit", help="Use only the first N validation images (quick checks).", callback=options.positive_int
    ),
    dry_run: bool = typer.Option(False, "--dry-run/--no-dry-run", help="Report the threshold without storing it."),
    pair: Path = typer.Option(
        None,
        "--pair",
        metavar="RUN",
        help="Another run (same validation split): choose both best.pt thresholds together, for "
        "the agreement ensemble of the two (max F1 of the ensemble by --rule).",
    ),
    quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bar."),
) -> None:
    """Choose the decision threshold on the run's validation side and store it in the checkpoint.

    Writes RUN/calibration.json with the scores at the chosen threshold; --dry-run leaves the checkpoint as it is.

    \fLong because of its option declarations; the calibration is in mitodet.infer.calibrate."""
    from mitodet.train.calibrate import calibrate_pair, calibrate_run

    setup_logging(quiet)
    with progress(disable=quiet) as bar:
        task = bar.add_task("calibrating", total=None)
        tick = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
        if pair is not None:
            r = calibrate_pair(run, pair, device=device, threads=threads, store=not dry_run, on_image=tick, rule=rule)
        else:
            r = calibrate_run(
                run,
                checkpoint,
                device=device,
                threads=threads,
                limit=limit,
                store=not dry_run,
                rule=rule,
                on_image=tick,
            )
    if r["rule"] != "pooled_f1":
        cols = ["group", "mitoses", "sensitivity", "false det./mm²", "F1 at density"]
        by = f"F1 at {r['density']:g} mitoses/mm²"
        if r["rule"].startswith("f1_mean"):
            by = f"mean of the {by} and the fields' official F1 {r['f1_fields']:.3f}"
        what = (
            f"{r['checkpoints'][0]} {r['threshold_a']:.4f} + {r['checkpoints'][1]} {r['threshold_b']:.4f} "
            f"(max {by} of their ensemble)"
            if pair is not None
            else f"{r['checkpoint']}: threshold {r['threshold']:.4f} (max {by})"
        )
        t = table(f"calibration of {what}", cols, right=set(cols[1:]))
        for g, v in [*r["groups"].items(), ("all", r)]:
            t.add_row(
                g,
                str(v["tp"] + v["fn"]),
                _num(v["sensitivity"]),
                _num(v["fp_per_mm2"], "{:.1f}"),
                _num(v["f1_density"]),
            )
    else:
        cols = ["images", "mitoses", "candidates", "threshold", "precision", "recall", "F1"]
        t = table(f"calibration of {r['checkpoint']} (max pooled F1)", cols, right=set(cols))
        t.add_row(
            str(r["n_images"]),
            str(r["n_mitoses"]),
            str(r["n_candidates"]),
            f"{r['threshold']:.4f}",
            f"{r['precision']:.4f}",
            f"{r['recall']:.4f}",
            f"{r['f1']:.4f}",
        )
    print_table(t)
    if not dry_run and pair is not None:
        for ckpt, key in zip(r["checkpoints"], ("threshold_a", "threshold_b"), strict=True):
            out_console.print(f"stored threshold {r[key]:.4f} in {ckpt}")
    elif not dry_run:
        out_console.print(f"stored threshold {r['threshold']:.4f} in {r['checkpoint']}")


def finetune_cmd(
    inputs: list[Path] = typer.Argument(
        ..., help="The lab's labelled images, or folders of them.", callback=options.inputs
    ),
    truth: Path = typer.Option(
        ...,
        "--truth",
        help="Their labels, as evaluate --truth reads them: a MIDOG JSON, a folder of QuPath GeoJSON or CSV "
        "files (<image>.geojson), or one CSV table image,x,y (pixels). 'mitotic figure' (or unnamed) points "
        "are positives; 'non-mitotic figure', 'imposter' or 'non-mitosis' are hard negatives.",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        metavar="DIR",
        help="Folder for the adapted pair, its training state and card.",
        callback=options.out_dir,
    ),  # fmt: skip
    mpp: float = typer.Option(
        None, "--mpp", help="Pixel spacing of the images, µm/px (default: stored).", callback=options.mpp
    ),  # fmt: skip
    minutes: float = typer.Option(
        15.0,
        "--minutes",
        help="Wall time of the whole adaptation: training of both models, calibration and scoring.",
        callback=options.minutes,
    ),  # fmt: skip
    from_: list[Path] = typer.Option(
        [], "--from", metavar="CHECKPOINT", help="Checkpoints to start from (default: the bundled pair)."
    ),
    exhaustive: bool = typer.Option(
        True,
        "--exhaustive/--not-exhaustive",
        help="Every mitosis of each image is labelled, so every other cell is a negative (the default); "
        "--not-exhaustive for crop-style labels (only cells far from the labels are negatives).",
    ),
    calibrate_only: bool = typer.Option(
        False,
        "--calibrate-only/--train",
        help="Only move the thresholds to the lab's fields (one logit shift for both models; a minute or "
        "two, weights unchanged), scored on a quarter of the images the choice did not see.",
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        help="Seed of the calibration split and of training: run again with another to see how "
        "much the result moves (>= 0).",
        callback=options.count,
    ),
    threads: int = typer.Option(None, "--threads", help="CPU threads (default: all).", callback=options.threads),
    quiet: bool = typer.Option(
        False, "--quiet/--no-quiet", "-q", help="No progress bars (the stage notes still show)."
    ),
) -> None:
    """Adapt the bundled pair to a lab's own labelled fields: fine-tune both models, choose their
    thresholds on a calibration share of the images (official F1), and compare with the bundled pair.
    The labels are taken as exhaustive: every unlabelled cell of an image is a negative. Label whole
    fields: thresholds chosen on images cut around mitoses come out too low for whole slides."""
    from mitodet.train.finetune import finetune

    note = lambda text: err_console.print(f"note: {text}", highlight=False, markup=False)  # noqa: E731
    if calibrate_only:
        _recalibrate(inputs, truth, out, mpp, from_, threads, note, seed)
        return
    with train_progress(quiet, epoch_lines=False) as bars:
        r = finetune(inputs, truth, out, mpp=mpp, minutes=minutes, models=from_ or None, exhaustive=exhaustive,
                     seed=seed, threads=threads, note=note, progress=bars.callbacks)  # fmt: skip
    if r.after:
        b, a = r.before, r.after
        where = f"calibration fields ({_images(len(r.calibration))}, {_mitoses(b['tp'] + b['fn'])})"
        given = "given" if from_ else "bundled"
        out_console.print(_gain(where, (given, b), ("adapted", a), r.interval), highlight=False)
        if not r.interval[0] > 0:  # NaN too: nothing to resample
            note(f"no sure gain on {_mitoses(b['tp'] + b['fn'])}, and the thresholds were chosen on these fields: "
                 "compare with --calibrate-only, or label more fields")  # fmt: skip
    models = " ".join(f"--model {m}" for m in r.models)
    out_console.print(f"use it: mitodet detect IMAGES {models} --out results/", highlight=False, markup=False)


def _gain(where: str, before: tuple[str, dict], after: tuple[str, dict], interval: tuple[float, float]) -> str:
    """One line: the F1 before and after on ``where``, the gain and its 95 % interval."""
    (nb, b), (na, a) = before, after
    spread = (
        f"95 % interval {interval[0]:+.3f} to {interval[1]:+.3f}"
        if interval[0] == interval[0]  # not NaN
        else "no interval: too few images to resample"
    )
    return f"{where}: F1 {b['f1']:.3f} {nb} -> {a['f1']:.3f} {na} ({a['f1'] - b['f1']:+.3f}; {spread})"


def _mitoses(n: int) -> str:
    return f"{n} mitosis" if n == 1 else f"{n} mitoses"


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def _recalibrate(inputs, truth, out, mpp, from_, threads, note, seed: int = 0) -> None:
    """``finetune --calibrate-only``: thresholds chosen on the lab's fields, weights unchanged."""
    from mitodet.resources import DEFAULT_MODELS
    from mitodet.train.finetune import labelled_fields
    from mitodet.train.labels import prevalence_note
    from mitodet.train.recalibrate import recalibrate

    images = labelled_fields(inputs, truth, mpp)
    if warning := prevalence_note(images):
        note(warning)
    r = recalibrate(images, list(from_ or DEFAULT_MODELS), out, seed=seed, threads=threads, note=note)
    b, a = r.before, r.after
    where = f"scoring fields ({_images(len(r.scoring))}, {_mitoses(b['tp'] + b['fn'])}; thresholds chosen on the other "
    where += f"{len(r.choosing)})"
    out_console.print(_gain(where, ("given", b), ("recalibrated", a), r.interval), highlight=False)
    if not r.interval[0] > 0:  # NaN too: nothing to resample
        note(f"no sure gain on {_mitoses(b['tp'] + b['fn'])}: label more fields, or fine-tune")
    out_console.print(
        f"thresholds moved by {r.shift:+.1f} (logit), chosen on all {r.images} images: "
        + ", ".join(f"{t:.4f}" for t in r.thresholds)
    )
    models = " ".join(f"--model {m}" for m in r.models)
    out_console.print(f"use it: mitodet detect IMAGES {models} --out results/", highlight=False, markup=False)


def _num(v: float, fmt: str = "{:.3f}") -> str:
    return "n/a" if v != v else fmt.format(v)  # NaN: nothing to measure in that group


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``calibrate`` to the root app."""
    app.command("train")(train_cmd)
    app.command("calibrate")(calibrate_cmd)
    app.command("finetune")(finetune_cmd)
