"""Calibrate a training run: the threshold chosen on its validation side, stored in the checkpoint.

Two rules: the paper's (maximum pooled F1 over the validation images) and the F1 at a realistic
mitosis density (maximum :func:`~mitodet.evaluate.density.density_f1` from sensitivity on the
validation mitoses and false detections per mm² of validation tissue and crop background; the
default for runs that validated by detection, ``val.detect``)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from mitodet.errors import MitodetError
from mitodet.infer.calibrate import calibrate
from mitodet.infer.detector import Detector
from mitodet.io.atomic import write_text
from mitodet.model import load_checkpoint, save_checkpoint
from mitodet.train.rundir import load_validation_set, read_run_config
from mitodet.train.validate import density_report, detect_items, detection_items

RULES = ("pooled_f1", "f1_density")


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
    """Search the threshold on the run's validation images by ``rule`` ("pooled_f1",
    "f1_density"; None: f1_density when the run validated by detection), write
    ``<run>/calibration.json`` and (``store``) the threshold into the checkpoint's metadata.

    Returns the search result (threshold and the scores there) plus ``checkpoint`` and ``rule``.
    """
    run = Path(run)
    cfg = read_run_config(run)
    rule = rule or ("f1_density" if cfg.val.detect else "pooled_f1")
    if rule not in RULES:
        raise MitodetError("--rule", f"{rule!r}: expected one of {', '.join(RULES)}")
    ckpt = Path(checkpoint) if checkpoint else run / "best.pt"
    # the checkpoint is read (and an unsafe one refused) before anything else about the run
    if rule == "f1_density":
        if threads:
            torch.set_num_threads(int(threads))
        model, _ = load_checkpoint(ckpt)
    else:
        det = Detector.from_checkpoint(ckpt, device=device, threads=threads)
    images = load_validation_set(run)[:limit] if limit else load_validation_set(run)
    if not images:
        raise MitodetError(run, "the validation split is empty")
    if rule == "f1_density":
        items = detection_items(images, cfg.val.tissue)
        truth, pred, area = detect_items(model, items, cfg.data.model_mpp, cfg.data.interpolation, device, on_image)
        result = density_report(truth, pred, area, {it.id: it.group for it in items}, cfg.val.density)
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


def _store(run: Path, ckpt: Path, result: dict, store: bool, calibration: dict) -> None:
    write_text(run / "calibration.json", json.dumps(result, indent=1, default=float) + "\n")
    if store:
        model, meta = load_checkpoint(ckpt)
        meta.update(threshold=result["threshold"], calibration={"rule": result["rule"], **calibration})
        save_checkpoint(ckpt, model, **meta)
