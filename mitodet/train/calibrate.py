"""Calibrate a training run: the threshold chosen on its validation side, stored in the checkpoint.

Three rules: the paper's (maximum pooled F1 over the validation images); the F1 at a realistic
mitosis density (maximum :func:`~mitodet.evaluate.density.density_f1` from sensitivity on the
validation mitoses and false detections per mm² of validation tissue and crop background; the
default for runs that validated by detection, ``val.detect``); and ``f1_mean``, the mean of that
and the official F1 of the validation side's whole labelled fields (the default for runs that
chose their best.pt by it, ``val.select: f1_mean``)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mitodet.data.split import read_split
from mitodet.errors import MitodetError
from mitodet.evaluate.density import MIDOG_DENSITY, density_scores
from mitodet.infer.calibrate import calibrate
from mitodet.infer.detector import Detector
from mitodet.infer.ensemble import agreement_pairs
from mitodet.io.atomic import write_text
from mitodet.model import load_checkpoint, save_checkpoint
from mitodet.schema import MATCH_RADIUS_UM, NON_MITOTIC, Detection
from mitodet.train.rundir import load_validation_set, read_run_config
from mitodet.train.validate import density_report, detect_items, detection_items, fields_f1

RULES = ("pooled_f1", "f1_density", "f1_mean")
DETECTION_RULES = ("f1_density", "f1_mean")  # rules scored from candidates (validation by detection)


def calibrate_run(
    run: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    device: str = "cpu",
    threads: int | None = None,
    limit: int | None = None,
    store: bool = True,
    on_image: Callable[[int, int], None] | None = None,
    rule: str | None = None,
) -> dict:
    """Search the threshold on the run's validation images by ``rule`` (one of RULES; None: the
    run's :func:`default_rule`), write
    ``<run>/calibration.json`` and (``store``) the threshold into the checkpoint's metadata.

    Returns the search result (threshold and the scores there) plus ``checkpoint`` and ``rule``.
    """
    run = Path(run)
    cfg = read_run_config(run)
    rule = rule or default_rule(cfg)
    if rule not in RULES:
        raise MitodetError("--rule", f"{rule!r}: expected one of {', '.join(RULES)}")
    ckpt = Path(checkpoint) if checkpoint else run / "best.pt"
    # the checkpoint is read (and an unsafe one refused) before anything else about the run
    if rule in DETECTION_RULES:
        if threads:
            torch.set_num_threads(int(threads))
        model, _ = load_checkpoint(ckpt)
    else:
        det = Detector.from_checkpoint(ckpt, device=device, threads=threads)
    images = load_validation_set(run)[:limit] if limit else load_validation_set(run)
    if not images:
        raise MitodetError(run, "the validation split is empty")
    if rule in DETECTION_RULES:
        items = detection_items(images, cfg.val.tissue)
        fields = _fields(run, items, rule)
        truth, pred, area = detect_items(model, items, cfg.data.model_mpp, cfg.data.interpolation, device, on_image)
        groups = {it.id: it.group for it in items}
        result = density_report(truth, pred, area, groups, cfg.val.density, fields=fields, rule=rule)
        result.update(rule=rule, density=cfg.val.density, checkpoint=str(ckpt))
        _store(run, ckpt, result, store, {k: v for k, v in result.items() if k != "threshold"})
        return result
    done = 0

    def tick(_key: str) -> None:
        nonlocal done
        done += 1
        if on_image is not None:
            on_image(done, len(images))

    result = calibrate(det, images, on_image=tick)
    result.update(rule=rule, checkpoint=str(ckpt))
    _store(run, ckpt, result, store, {k: result[k] for k in ("f1", "precision", "recall", "n_images", "n_mitoses")})
    return result


def default_rule(cfg) -> str:
    """The rule a run's own validation chose best.pt by: f1_mean for ``val.select: f1_mean``,
    f1_density for other runs that validated by detection, else the paper's pooled F1."""
    if cfg.val.detect:
        return "f1_mean" if cfg.val.select == "f1_mean" else "f1_density"
    return "pooled_f1"


def _fields(run: Path, items: list, rule: str) -> set[str]:
    """The ids of the whole labelled fields among the validation items (needed by f1_mean)."""
    fields = {it.id for it in items if it.field}
    if rule == "f1_mean" and not fields:
        raise MitodetError(run, "--rule f1_mean needs whole labelled fields on the validation side; it has none")
    return fields


def _store(run: Path, ckpt: Path, result: dict, store: bool, calibration: dict) -> None:
    write_text(run / "calibration.json", json.dumps(result, indent=1, default=float) + "\n")
    if store:
        model, meta = load_checkpoint(ckpt)
        meta.update(threshold=result["threshold"], calibration={"rule": result["rule"], **calibration})
        save_checkpoint(ckpt, model, **meta)


# -- the pair: thresholds chosen for their agreement ensemble ---------------------------------
PAIR_RULES = {"f1_density": "f1_density_pair", "f1_mean": "f1_mean_pair"}
PAIR_FLOOR = 0.05  # the detector's candidate floor: pairs are formed among these, as in detection


def pair_search(
    truth: dict,
    pred_a: dict,
    pred_b: dict,
    area: dict,
    density: float = MIDOG_DENSITY,
    radius: float = MATCH_RADIUS_UM,
    floor: float = PAIR_FLOOR,
    steps: int = 30,
    fields: set[str] | None = None,
) -> dict:
    """The thresholds (ta, tb) whose agreement ensemble has the highest F1 at ``density``
    (:func:`~mitodet.evaluate.density.density_scores`) on the images of ``area``; with whole
    labelled ``fields``, the highest mean of that and the fields' official F1 (rule f1_mean,
    returned as ``f1_mean``).

    ``pred_a`` / ``pred_b``: image -> [(x, y, probability)] of each model (one unit, e.g. µm, as
    ``radius``). Pairs are formed once, as :func:`~mitodet.infer.ensemble.ensemble` forms them
    (they do not depend on the thresholds); a pair is a mitotic figure when pa >= ta and pb >= tb.
    The grid: ``steps`` quantiles of each model's paired probabilities above 0.5. Returns the
    scores there plus ``threshold_a``, ``threshold_b`` and ``pairs`` (image -> [(x, y, pa, pb)])."""
    pairs: dict[str, np.ndarray] = {}
    for k in area:
        a = [Detection(x, y, p, NON_MITOTIC) for x, y, p in pred_a.get(k, []) if p >= floor]
        b = [Detection(x, y, p, NON_MITOTIC) for x, y, p in pred_b.get(k, []) if p >= floor]
        ij = agreement_pairs(a, b, radius)
        pairs[k] = np.array(
            [((a[i].x + b[j].x) / 2, (a[i].y + b[j].y) / 2, a[i].probability, b[j].probability) for i, j in ij]
        ).reshape(-1, 4)
    every = np.concatenate(list(pairs.values())) if pairs else np.zeros((0, 4))
    q = np.linspace(0, 0.999, steps)
    grid_a = np.unique(np.quantile(every[every[:, 2] > 0.5, 2], q)) if (every[:, 2] > 0.5).any() else [0.5]
    grid_b = np.unique(np.quantile(every[every[:, 3] > 0.5, 3], q)) if (every[:, 3] > 0.5).any() else [0.5]
    best: dict = {"f1_density": -1.0}
    best_score = -1.0
    for ta in grid_a:
        for tb in grid_b:
            called = {k: [(x, y, 1.0) for x, y, pa, pb in v if pa >= ta and pb >= tb] for k, v in pairs.items()}
            sc = density_scores(truth, called, area, radius, 0.5, density)
            score = sc["f1_density"]
            if fields:
                sc["f1_mean"] = score = float(np.nanmean([score, fields_f1(truth, called, fields, 0.5)["f1"]]))
            if score == score and score > best_score:
                best, best_score = {"threshold_a": float(ta), "threshold_b": float(tb), **sc}, score
    best["pairs"] = pairs
    return best


def calibrate_pair(
    run: str | os.PathLike,
    other: str | os.PathLike,
    device: str = "cpu",
    threads: int | None = None,
    store: bool = True,
    on_image: Callable[[int, int], None] | None = None,
    rule: str | None = None,
) -> dict:
    """Thresholds for the agreement ensemble of ``run``'s and ``other``'s best.pt, chosen together
    on ``run``'s validation side by :func:`pair_search` (each model's own best threshold is higher:
    the ensemble's agreement already removes false detections), by ``rule`` (f1_density or f1_mean;
    None: the run's :func:`default_rule`). Writes ``<run>/calibration.json`` and
    ``<other>/calibration.json`` (rule ``<rule>_pair``) and (``store``) each threshold into its
    checkpoint. Returns the result with per-group scores (``groups``) at the pair."""
    run, other = Path(run), Path(other)
    cfg = read_run_config(run)
    rule = rule or default_rule(cfg)
    if rule not in PAIR_RULES:
        raise MitodetError("--rule", f"{rule!r} with --pair: expected one of {', '.join(PAIR_RULES)}")
    for r in (run, other):
        if not (r / "split.json").is_file():
            raise MitodetError(r, "run folder has no split.json")
    if set(read_split(run / "split.json")[1]) != set(read_split(other / "split.json")[1]):
        # the other model may have trained on images of this validation side: its threshold would be biased
        raise MitodetError(f"--pair {other}", f"another validation split than {run}'s; train both on one split")
    if threads:
        torch.set_num_threads(int(threads))
    ckpts = [run / "best.pt", other / "best.pt"]
    models = [load_checkpoint(c)[0] for c in ckpts]
    images = load_validation_set(run)
    if not images:
        raise MitodetError(run, "the validation split is empty")
    items = detection_items(images, cfg.val.tissue)
    fields = _fields(run, items, rule) if rule == "f1_mean" else set()
    truth, pred_a, area = detect_items(models[0], items, cfg.data.model_mpp, cfg.data.interpolation, device, on_image)
    _, pred_b, _ = detect_items(models[1], items, cfg.data.model_mpp, cfg.data.interpolation, device, on_image)
    found = pair_search(truth, pred_a, pred_b, area, cfg.val.density, fields=fields)
    called = {
        k: [(x, y, 1.0) for x, y, pa, pb in v if pa >= found["threshold_a"] and pb >= found["threshold_b"]]
        for k, v in found.pop("pairs").items()
    }
    groups = {it.id: it.group for it in items}
    report = density_report(truth, called, area, groups, cfg.val.density, 0.5, fields=fields)
    result = {**report, "threshold_a": found["threshold_a"], "threshold_b": found["threshold_b"]}
    if fields:
        result["f1_mean"] = found["f1_mean"]
    result.update(rule=PAIR_RULES[rule], density=cfg.val.density, checkpoints=[str(c) for c in ckpts])
    keys = ("sensitivity", "fp_per_mm2", "f1_density", "density", "f1_fields", "f1_mean")
    scores = {k: result[k] for k in keys if k in result}
    for me, partner, t in ((0, 1, found["threshold_a"]), (1, 0, found["threshold_b"])):
        mine = {**result, "threshold": t, "checkpoint": str(ckpts[me]), "partner": str(ckpts[partner])}
        _store(ckpts[me].parent, ckpts[me], mine, store, {**scores, "partner": ckpts[partner].parent.name})
    result["threshold"] = found["threshold_a"]
    return result
