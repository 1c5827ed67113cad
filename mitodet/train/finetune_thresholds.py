"""The thresholds of an adapted pair (``mitodet finetune``): chosen on the lab's calibration
fields for the best official F1 (a free pair for the agreement ensemble, or one model's), stored
in its checkpoints, and moved with the final epochs so that the pair keeps calling as many
figures there (:func:`mitodet.train.recalibrate.count_shift`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mitodet.infer.run import load_detectors
from mitodet.model.checkpoint import load_checkpoint, save_checkpoint
from mitodet.train.labels import LabelledImage
from mitodet.train.recalibrate import Candidates, candidates, count_shift, scores, shifted


def choose_thresholds(
    models: list[Path], images: list[LabelledImage], given: list[float]
) -> tuple[list[float], bool, dict, dict]:
    """The thresholds of ``models`` (one or a pair) with the best official F1 on ``images`` ->
    (thresholds, whether they were chosen (else the ``given`` ones: no candidate passed 0.5),
    their scores, per image (tp, fp, fn)). Scored from the candidates the choice searched (the
    pairs as detection forms them), so the calibration fields are detected once."""
    cands = candidates(load_detectors(models), images)
    chosen = pair_thresholds(cands) if len(models) == 2 else single_threshold(cands)
    thresholds = list(chosen) if chosen else given
    s = scores(cands, list(cands), thresholds)
    return thresholds, chosen is not None, {k: v for k, v in s.items() if k != "per_image"}, s["per_image"]


def follow_thresholds(models: list[Path], images: list[LabelledImage], chosen: list[float], count: int):
    """Move the thresholds of the final ``models`` by the one logit shift at which they call
    ``count`` figures on ``images`` (what they called at ``chosen`` before the final epochs) and
    store them -> (shift, thresholds). :func:`mitodet.train.recalibrate.count_shift` says why."""
    shift = count_shift(candidates(load_detectors(models), images), chosen, count)
    thresholds = shifted(chosen, shift)
    for ckpt, t in zip(models, thresholds, strict=True):
        model, meta = load_checkpoint(ckpt)
        meta["threshold"] = float(t)
        meta["final_epochs"] = (
            f"continued on every field (calibration fields included); the threshold chosen before them, moved "
            f"by {shift:+.1f} in logit space to call as many figures ({count}) on the calibration fields"
        )
        save_checkpoint(ckpt, model, **meta)
    return shift, thresholds


def threshold_of(ckpt: Path) -> float:
    return float(load_checkpoint(ckpt)[1].get("threshold", 0.5))


def store_threshold(ckpt: Path, threshold: float, chosen: bool = True) -> None:
    model, meta = load_checkpoint(ckpt)
    rule = "official F1 on the calibration fields" if chosen else "the given model's (no candidate passed 0.5 there)"
    meta.update(threshold=float(threshold), calibration={"rule": rule})
    save_checkpoint(ckpt, model, **meta)


def pair_thresholds(cands: dict[str, Candidates], steps: int = 30) -> tuple[float, float] | None:
    """The thresholds (ta, tb) whose agreement ensemble has the best official F1 over the pair
    candidates ``cands``. A free pair, not the one logit shift of ``--calibrate-only``: after
    fine-tuning, each model's own threshold is no longer balanced against the other's, and the
    shift measured worse (official F1 on the test fields of ``bench_finetune.py``, both followed
    through the final epochs: 0.485 / 0.421 against 0.492 / 0.500, one run each). A pair is a
    mitotic figure when pa >= ta and pb >= tb. Grid: ``steps`` quantiles of each model's paired
    probabilities above 0.5."""
    keys = list(cands)
    every = np.concatenate([c.rows for c in cands.values()])
    if not (every[:, 2] > 0.5).any() or not (every[:, 3] > 0.5).any():
        return None
    q = np.linspace(0, 0.999, steps)
    best = (-1.0, 0.5, 0.5)
    for ta in np.unique(np.quantile(every[every[:, 2] > 0.5, 2], q)):
        for tb in np.unique(np.quantile(every[every[:, 3] > 0.5, 3], q)):
            f1 = scores(cands, keys, [ta, tb])["f1"]
            if f1 > best[0]:
                best = (f1, float(ta), float(tb))
    return best[1], best[2]


def single_threshold(cands: dict[str, Candidates], steps: int = 200) -> tuple[float] | None:
    """The threshold of one model with the best official F1 over its candidates ``cands``; grid:
    ``steps`` quantiles of its probabilities above 0.5."""
    keys = list(cands)
    p = np.concatenate([c.rows[:, 2] for c in cands.values()])
    if not (p > 0.5).any():
        return None
    grid = np.unique(np.quantile(p[p > 0.5], np.linspace(0, 0.999, steps)))
    f1 = [scores(cands, keys, [t])["f1"] for t in grid]
    return (float(grid[int(np.argmax(f1))]),)
