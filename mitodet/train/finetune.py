"""``mitodet finetune``: adapt the bundled pair (or given checkpoints) to a lab's own labelled
fields, on a CPU, in minutes.

1. The labels are paired with the images (:mod:`mitodet.train.labels`) and written as a fields
   table (``DIR/data/fields.csv``), which training reads as whole labelled fields: with
   exhaustive labels every unlabelled cell is a negative and the imposters are weighted up.
2. The images are split by image (seeded, 25 %) into adaptation and calibration fields, and
   the given pair is scored on the calibration ones (official scorer).
3. Each model is fine-tuned from its checkpoint for its share of the budget (dense training, its
   own augmentation protocol; best.pt by the calibration windows' loss); where the original
   training crops are at hand (``data_root``), a share of each batch comes from them (the guard
   against forgetting), and the original validation side is scored before and after.
4. The thresholds are chosen on the calibration fields for the best official F1: of the pair's
   agreement ensemble, chosen together, or of the one model. The adapted pair is scored there
   with a bootstrap interval over images against the given one.
5. Each model then trains its final epochs (a quarter of the training time) on every field, the
   calibration ones included: ``DIR/adapted-<model>.pt``. Those epochs move the logits, so the
   thresholds follow them by the one logit shift at which the final pair calls as many figures
   on the calibration fields as it did at its chosen thresholds before them (no labels needed).

``--minutes`` is the wall time of all of it (:class:`Clock`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mitodet.data.fields import FIELDS_TABLE_COLUMNS, load_fields_table
from mitodet.data.split import read_split, write_split
from mitodet.errors import MitodetError
from mitodet.evaluate.bootstrap import gain_interval
from mitodet.evaluate.density import MIDOG_DENSITY
from mitodet.evaluate.matching import score
from mitodet.infer.ensemble import detect_image
from mitodet.infer.inputs import collect_inputs
from mitodet.infer.run import load_detectors
from mitodet.io.atomic import write_csv, write_text
from mitodet.io.image import read_image
from mitodet.model.checkpoint import load_checkpoint, save_checkpoint
from mitodet.resources import DEFAULT_MODELS
from mitodet.schema import MATCH_RADIUS_UM, MITOTIC_FIGURE, OUTPUT_NAME, um_to_px
from mitodet.train.config import config_from_dict
from mitodet.train.data import labelled_records, split_records
from mitodet.train.finetune_thresholds import choose_thresholds, follow_thresholds, store_threshold, threshold_of
from mitodet.train.labels import LabelledImage, lab_labels, mitoses_per_mm2, prevalence_note
from mitodet.train.recalibrate import given_scores, interval_text
from mitodet.train.run import train
from mitodet.train.rundir import load_state, load_validation_set
from mitodet.train.validate import density_report, detect_items, detection_items

CALIBRATION_FRACTION = 0.25
FINAL_SHARE = 0.25  # of each model's budget: the final epochs on all fields, calibration ones included
DEFAULT_MINUTES = 15.0
MIN_TRAINING_S = 1.0  # a budget spent before training still trains one epoch
SOURCE = "lab fields"
# negatives of each batch: mostly the lab's own fields; crops and their imposters keep the rest
MIX_WITH_CROPS = {"field": 0.6, "crop": 0.25, "imposter": 0.15}
MIX_ALONE = {"field": 1.0}
NOT_BETTER = (
    "the adapted {what} is no better on the calibration fields (F1 {after:.3f}) than the given one "
    "with its thresholds moved by {shift:+.1f} in logit space there ({moved:.3f}): --calibrate-only "
    "gives that in the time of one detection pass"
)


@dataclass
class FinetuneReport:
    out: Path
    models: list[Path]
    images: int
    adaptation: list[str]
    calibration: list[str]
    mitoses: int
    imposters: int
    minutes: float
    forgetting_guard: bool
    before: dict = field(default_factory=dict)  # bundled pair on the calibration fields
    moved: dict = field(default_factory=dict)  # ... its thresholds moved by the one shift best there
    after: dict = field(default_factory=dict)  # adapted pair
    interval: tuple[float, float] = (float("nan"), float("nan"))  # 95 % bootstrap of F1 after - before
    original: dict = field(default_factory=dict)  # the original validation side: before / after sensitivity
    thresholds: list[float] = field(default_factory=list)  # chosen on the calibration fields
    final_shift: float = 0.0  # logit shift that kept the figure count after the final epochs
    final_thresholds: list[float] = field(default_factory=list)  # in the adapted checkpoints
    seed: int = 0  # of the calibration split and of training


def write_fields_table(path: Path, labelled: list[LabelledImage]) -> None:
    rows = []
    for im in labelled:
        if not im.points:
            rows.append({"image": str(im.path.resolve()), "mpp": im.mpp})
        for p in im.points:
            rows.append({"image": str(im.path.resolve()), "mpp": im.mpp, "x": f"{p.x:.2f}", "y": f"{p.y:.2f}",
                         "label": OUTPUT_NAME[p.label], "weight": p.weight})  # fmt: skip
    write_csv(path, FIELDS_TABLE_COLUMNS, rows)


def _data_root(data_root: str | os.PathLike | None) -> Path | None:
    root = data_root or os.environ.get("MITODET_DATA")
    if root and (Path(root) / "midog21_crops").is_dir():
        return Path(root)
    return None


def finetune_config(
    init: Path,
    table: Path,
    seconds: float,
    root: Path | None,
    exhaustive: bool,
    seed: int,
    split: Path | None = None,
    detect: bool = True,
) -> dict:
    """The training config of one model: its own (from the checkpoint) with the data, sampling,
    schedule and validation of a fine-tuning run. ``detect=False``: validation by the windows'
    loss alone, for a run whose threshold is chosen afterwards on the calibration fields (a
    detection pass over them each epoch cost more than the epoch's training)."""
    net, meta = load_checkpoint(init)
    base = dict(meta.get("config") or {})
    protocol = meta.get("augmentation") or base.get("augment", {}).get("protocol", "ca-rgb")
    augment = base.get("augment", {"protocol": protocol})
    data = {"fields": str(table), "fields_exhaustive": exhaustive, "field_grid": 8, "field_oversample": 4}
    if root is not None:
        data.update(crops=str(root / "midog21_crops"), crop_grid=8)
        if (root / "atnorm_md").is_dir():
            data["atnorm"] = str(root / "atnorm_md")
    val = {"detect": True, "select": "f1_fields" if exhaustive else "loss", "every": 1, "negatives": 2000}
    if not detect:
        val = {"detect": False, "select": "loss", "every": 1, "negatives": 2000}
    return {
        "name": f"finetune-{init.stem}",
        "seed": seed,
        "device": "auto",
        "model": {"name": net.config["name"], "init": str(init)},
        "data": data,
        "split": {"val_fraction": CALIBRATION_FRACTION, "seed": seed, "stratify": ["source", "scanner"]}
        | ({"file": str(split)} if split else {}),
        "sampling": {"batch_size": 16, "negative_mix": MIX_WITH_CROPS if root else MIX_ALONE},
        "dense": {
            "window": 160,
            "pos_radius_um": 2.0,
            "ignore_radius_um": 7.5,
            "positive_windows": 0.5,
            "unlabelled_weight": 0.5,
            "hard_negative_fraction": 0.2,
            "imposter_weight": 3.0,
        },  # fmt: skip
        "augment": augment,
        "optim": {"lr": 0.005, "lr_min": 0.0001, "cycle_epochs": 10},
        "train": {"mode": "dense", "epochs": 1000, "steps_per_epoch": 40, "time_budget_s": seconds},
        "val": val,
    }


@dataclass
class Clock:
    """The budget of an adaptation is the whole command's wall time, not its training alone: the
    stages around training (data loading, the detection passes over the calibration fields, the
    forgetting check) are measured as they run and reserved for, and each training gets its
    share of what is left. (A fixed share per training left 3.7 of 15.7 minutes to training.)"""

    deadline: float
    load_s: float = 30.0  # data loading and setup of one training (measured after the first)
    detect_s: float = 0.0  # one pass of the models over the calibration fields
    original_s: float = 0.0  # one scoring of the original validation side

    def share(self, weight: float, weights_left: float, trainings_left: int, reserve: float) -> float:
        """Seconds for the next training: its ``weight`` of the time left after ``reserve`` and
        the loading of the ``trainings_left`` trainings (this one included)."""
        left = self.deadline - time.perf_counter() - reserve - trainings_left * self.load_s
        return max(MIN_TRAINING_S, left * weight / weights_left)

    def watch(self, progress: Mapping[str, Callable] | None) -> dict:
        """``progress`` for the next training, its ``on_epoch`` wrapped to measure the loading
        cost: the time from now to the first epoch's start."""
        started, inner, seen = time.perf_counter(), (progress or {}).get("on_epoch"), []

        def on_epoch(epoch: int, epochs: int) -> None:
            if not seen:
                seen.append(epoch)
                self.load_s = time.perf_counter() - started
            if inner is not None:
                inner(epoch, epochs)

        return {**(progress or {}), "on_epoch": on_epoch}


def official_f1(detectors, images: list[LabelledImage]) -> tuple[dict, dict]:
    """Official pooled F1 of ``detectors`` on ``images`` -> (scores, per-image (tp, fp, fn))."""
    truth, pred = {}, {}
    for im in images:
        pixels, _ = read_image(im.path, im.mpp)
        dets = detect_image(detectors, pixels, im.mpp)
        key = str(im.path)
        r = um_to_px(MATCH_RADIUS_UM, im.mpp)
        truth[key] = [(p.x / r, p.y / r) for p in im.points if p.label == MITOTIC_FIGURE]  # radius 1 in these units
        pred[key] = [(d.x / r, d.y / r) for d in dets if d.is_mitosis]
    s = score(truth, pred, 1.0)
    per = {k: (v.true_positives, v.false_positives, v.false_negatives) for k, v in s["per_image"].items()}
    return {k: s[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1")}, per


def labelled_fields(inputs: list[Path], truth: Path, mpp: float | None) -> list[LabelledImage]:
    """The images of ``inputs`` paired with their labels: at least two, and a mitosis among them."""
    labelled = lab_labels(collect_inputs(inputs), truth, mpp)
    if len(labelled) < 2:
        raise MitodetError(truth, "adaptation needs at least 2 labelled images (to adapt, and to score)")
    if not sum(im.mitoses for im in labelled):
        raise MitodetError(truth, "no mitotic figure among the labels")
    return labelled


def finetune(
    inputs: list[Path],
    truth: Path,
    out: Path,
    mpp: float | None = None,
    minutes: float = DEFAULT_MINUTES,
    models: list[Path] | None = None,
    exhaustive: bool = True,
    data_root: str | os.PathLike | None = None,
    seed: int = 0,
    threads: int | None = None,
    note: Callable[[str], None] | None = None,
    progress: Mapping[str, Callable] | None = None,
) -> FinetuneReport:
    """Adapt ``models`` (default: the bundled pair) to the labelled ``inputs`` -> the report.

    ``minutes`` is the whole adaptation's wall time (:class:`Clock`). ``note`` gets a line as each
    stage starts; ``progress`` holds callbacks of :func:`mitodet.train.run.train` (``on_image``,
    ``on_epoch``, ``on_step``, ``on_val``) that follow each of its trainings.

    Long because it is the wiring of the four trainings and two scorings of an adaptation."""
    say = note or (lambda text: None)
    t0 = time.perf_counter()
    clock = Clock(t0 + minutes * 60)
    if threads:
        torch.set_num_threads(threads)
    models = [Path(m) for m in (models or DEFAULT_MODELS)]
    labelled = labelled_fields(inputs, truth, mpp)
    if warning := prevalence_note(labelled):
        say(warning)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "data" / "fields.csv"
    table.parent.mkdir(exist_ok=True)
    write_fields_table(table, labelled)
    root = _data_root(data_root)
    say(
        "original training crops: "
        + (
            f"mixed into each batch ({root})"
            if root
            else "not found ($MITODET_DATA): fine-tuning on the lab's fields alone"
        )
    )
    split = out / "data" / "split.json"
    cal = calibration_split(models[0], table, root, exhaustive, seed, split, labelled)
    adapt = [im for im in labelled if im not in cal]
    choose = bool(cal) and exhaustive  # thresholds by the official F1 on the calibration fields
    rep = FinetuneReport(out, [], len(labelled), [str(i.path) for i in adapt], [str(i.path) for i in cal],
                         sum(im.mitoses for im in labelled), sum(len(im.points) - im.mitoses for im in labelled),
                         0.0, root is not None, seed=seed)  # fmt: skip
    per_b: dict = {}
    if cal:
        say(f"scoring the given {'pair' if len(models) == 2 else 'model'} on the {len(cal)} calibration field(s)")
        t = time.perf_counter()
        rep.before, per_b, rep.moved = given_scores(models, cal, move=choose)
        clock.detect_s = time.perf_counter() - t
    n = len(models)
    weights = [(1 - FINAL_SHARE) / n] * n + [FINAL_SHARE / n] * n  # adaptation, then final epochs
    passes = int(choose) + bool(cal)  # detection passes over the calibration fields: choosing, following
    reserve = lambda: passes * clock.detect_s + (2 * clock.original_s if root else 0.0)  # noqa: E731
    clock.original_s = clock.detect_s  # a guess until the first scoring of the original side
    calibrated = []
    budget = clock.share(weights[0], sum(weights), 2 * n, reserve())  # the same for each model
    for k, m in enumerate(models):
        cfg = finetune_config(m, table, budget, root, exhaustive, seed, split, detect=not choose)
        run_dir = out / m.stem
        if run_dir.exists():
            shutil.rmtree(run_dir)
        say(f"adapting {m.name} ({budget / 60:.1f} min of training)")
        train(config_from_dict(cfg, str(m)), run_dir=run_dir, **clock.watch(progress))
        if not (run_dir / "best.pt").is_file():
            raise MitodetError(run_dir, "training ended before its first validation: give more --minutes")
        calibrated.append(run_dir / "best.pt")
        if root is not None and k == 0:
            say("scoring the original validation side before adaptation (forgetting)")
            t = time.perf_counter()
            rep.original["before"] = _original_side(run_dir, m)
            clock.original_s = time.perf_counter() - t
    if choose:
        say(f"choosing the thresholds on the calibration fields (official F1 of the {'pair' if n == 2 else 'model'})")
        chosen, found, rep.after, per_a = choose_thresholds(calibrated, cal, [threshold_of(m) for m in models])
        for ckpt, t in zip(calibrated, chosen, strict=True):
            store_threshold(ckpt, t, found)
        rep.interval = gain_interval(per_b, per_a)
    elif cal:
        say(f"scoring the adapted pair on the {len(cal)} calibration field(s)")
        rep.after, per_a = official_f1(load_detectors(calibrated), cal)  # before the final epochs saw them
        rep.interval = gain_interval(per_b, per_a)
    rep.thresholds = [threshold_of(c) for c in calibrated]
    if rep.after and rep.moved and rep.after["f1"] <= rep.moved["f1"]:
        what = "pair" if n == 2 else "model"
        say(NOT_BETTER.format(what=what, after=rep.after["f1"], shift=rep.moved["shift"], moved=rep.moved["f1"]))
    follow_s, original_s = (clock.detect_s if rep.after else 0.0), (clock.original_s if root else 0.0)
    for k, (m, ckpt) in enumerate(zip(models, calibrated, strict=True), n):
        final = out / f"adapted-{m.stem}.pt"
        budget = clock.share(weights[k], sum(weights[k:]), 2 * n - k, follow_s + original_s)
        say(f"final epochs of {m.name} on every field ({budget / 60:.1f} min)")
        final_epochs(ckpt.parent, table, budget, root, exhaustive, seed, final, clock.watch(progress))
        rep.models.append(final)
    rep.final_thresholds = rep.thresholds
    if rep.after:
        count = rep.after["tp"] + rep.after["fp"]
        say(f"moving the thresholds with the final epochs: to the {count} figure(s) called on the calibration fields")
        rep.final_shift, rep.final_thresholds = follow_thresholds(rep.models, cal, rep.thresholds, count)
    if root is not None:
        say("scoring the original validation side after adaptation (forgetting)")
        rep.original["after"] = _original_side(out / models[0].stem, rep.models[0])
        if not rep.original["before"] or not rep.original["after"]:
            rep.original = {}
    rep.minutes = (time.perf_counter() - t0) / 60
    write_text(out / "finetune.json", json.dumps(_jsonable(rep), indent=1) + "\n")
    write_text(out / "MODEL_CARD.md", model_card(rep, labelled))
    return rep


def calibration_split(
    init: Path, table: Path, root: Path | None, exhaustive: bool, seed: int, split: Path, labelled: list[LabelledImage]
) -> list[LabelledImage]:
    """Split the training records (the lab's fields and, where at hand, the original crops) as
    training will, by image and seeded, into ``split``; -> the lab's calibration images."""
    cfg = config_from_dict(finetune_config(init, table, 1.0, root, exhaustive, seed), str(init))
    parts = split_records(cfg, labelled_records(cfg))
    write_split(split, parts.train_ids, parts.val_ids)
    held = {r.domain["source_image"] for r in load_fields_table(table, exhaustive) if r.id in set(parts.val_ids)}
    return [im for im in labelled if str(im.path.resolve()) in held]  # the table names images by resolved path


def final_epochs(
    run_dir: Path,
    table: Path,
    seconds: float,
    root: Path | None,
    exhaustive: bool,
    seed: int,
    final: Path,
    progress: Mapping[str, Callable] | None = None,
) -> None:
    """Continue ``run_dir``'s best.pt on every lab field (the calibration ones too) for
    ``seconds``, and write the last weights to ``final`` with best.pt's calibrated threshold."""
    lab = {r.id for r in load_fields_table(table, exhaustive)}
    train_ids, val_ids = read_split(run_dir / "split.json")
    split = run_dir / "final-split.json"
    write_split(split, train_ids + [i for i in val_ids if i in lab], [i for i in val_ids if i not in lab])
    raw = finetune_config(run_dir / "best.pt", table, seconds, root, exhaustive, seed)
    raw["split"]["file"] = str(split)
    raw["val"] = {"detect": False, "select": "loss", "negatives": 2000}
    raw["optim"]["lr"] = 0.002
    train(config_from_dict(raw, str(run_dir)), run_dir=run_dir / "final", **(progress or {}))
    model, meta = load_checkpoint(run_dir / "best.pt")
    model.load_state_dict(load_state(run_dir / "final")["model"])
    meta["final_epochs"] = "continued on every field (calibration fields included); threshold of the calibrated epoch"
    save_checkpoint(final, model, **meta)


def _original_side(run_dir: Path, ckpt: Path) -> dict:
    """Sensitivity of ``ckpt`` on the original validation side (the training crops' validation
    mitoses, at its own threshold): before and after adaptation, the check on forgetting."""
    vals = [v for v in load_validation_set(run_dir) if v.domain.get("source") != SOURCE]
    if not vals:
        return {}
    items = detection_items(vals)
    groups = {it.id: it.group for it in items}
    net, meta = load_checkpoint(ckpt)
    truth, pred, area = detect_items(net, items, meta.get("mpp", 0.25), meta.get("interpolation", "bilinear"))
    rep = density_report(truth, pred, area, groups, MIDOG_DENSITY, threshold=float(meta.get("threshold", 0.5)))
    return {"sensitivity": rep["sensitivity"], **{g: v["sensitivity"] for g, v in rep["groups"].items()}}


def _jsonable(rep: FinetuneReport) -> dict:
    d = dict(rep.__dict__)
    d["out"], d["models"] = str(rep.out), [str(m) for m in rep.models]
    d["interval"] = list(rep.interval)
    return d


def model_card(rep: FinetuneReport, labelled: list[LabelledImage]) -> str:
    spacing = sorted({round(im.mpp, 4) for im in labelled})
    b, a = rep.before, rep.after
    lines = [
        "# Adapted pair (mitodet finetune)",
        "",
        f"- Data: {rep.images} labelled images ({len(rep.adaptation)} adaptation, {len(rep.calibration)} calibration),",
        f"  {rep.mitoses} mitotic figures ({mitoses_per_mm2(labelled):.1f} per mm²), {rep.imposters} imposters, "
        f"spacing {', '.join(map(str, spacing))} µm/px.",
        f"- Training: {rep.minutes:.1f} minutes for {len(rep.models)} models (seed {rep.seed}); "
        "original training crops "
        + (
            "mixed in (guard against forgetting)." if rep.forgetting_guard else "not available: the lab's fields alone."
        ),
        f"- Thresholds (chosen for the best official F1 on the calibration fields"
        f"{', together for the pair' if len(rep.models) == 2 else ''}): "
        f"{', '.join(f'{t:.4f}' for t in rep.thresholds)};",
        "  then the final quarter of the training time on every field (calibration ones included)"
        + (
            f"; they moved the logits, so the thresholds moved with them by {rep.final_shift:+.1f} in logit space "
            f"(as many figures called on the calibration fields): {', '.join(f'{t:.4f}' for t in rep.final_thresholds)}"
            "."
            if rep.after
            else "."
        ),
        "",
    ]
    if rep.original:
        o = rep.original
        lines += [
            "Original validation side (forgetting check), sensitivity at each model's threshold: "
            f"{o['before']['sensitivity']:.3f} before, {o['after']['sensitivity']:.3f} after (first model).",
            "",
        ]
    if a:
        lines += [
            "| pair | TP | FP | FN | precision | recall | F1 |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {n} | {s['tp']} | {s['fp']} | {s['fn']} | {s['precision']:.3f} | {s['recall']:.3f} | "
                f"{s['f1']:.3f} |"
                for n, s in (("bundled", b), ("adapted", a))
            ),
            "",
            f"F1 gain {a['f1'] - b['f1']:+.3f} on {b['tp'] + b['fn']} mitotic figures, "
            f"{interval_text(rep.interval, 'calibration')}. The threshold was "
            "chosen on these fields, so the adapted F1 is optimistic by that choice; it is the "
            "score of the pair before its final epochs (which saw these fields).",
        ]
    if a and rep.moved:
        m = rep.moved
        lines += [
            "",
            f"The given pair with both thresholds moved by {m['shift']:+.1f} in logit space (the best shift on the "
            f"same fields, as `--calibrate-only` chooses it): F1 {m['f1']:.3f} ({m['tp']}/{m['fp']}/{m['fn']} TP/FP/FN)"
            + ("; the adapted pair does not beat it here." if a["f1"] <= m["f1"] else "."),
        ]
    return "\n".join(lines) + "\n"
