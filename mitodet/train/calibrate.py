"""Calibrate a training run: the F1-optimal threshold on its validation split, stored in the checkpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from mitodet.errors import MitodetError
from mitodet.infer.calibrate import calibrate
from mitodet.infer.detector import Detector
from mitodet.io.atomic import write_text
from mitodet.model import load_checkpoint, save_checkpoint
from mitodet.train.rundir import load_validation_set


def calibrate_run(
    run: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    device: str = "cpu",
    threads: int | None = None,
    limit: int | None = None,
    store: bool = True,
    on_image: Callable[[int, int], None] | None = None,
) -> dict:
    """Search the threshold maximising pooled F1 on the run's validation images, write
    ``<run>/calibration.json`` and (``store``) the threshold into the checkpoint's metadata.

    Returns the :func:`~mitodet.infer.calibrate.calibrate` result plus ``checkpoint``.
    """
    run = Path(run)
    ckpt = Path(checkpoint) if checkpoint else run / "best.pt"
    det = Detector.from_checkpoint(ckpt, device=device, threads=threads)
    images = load_validation_set(run)[:limit] if limit else load_validation_set(run)
    if not images:
        raise MitodetError(run, "the validation split is empty")
    done = 0

    def tick(_key: str) -> None:
        nonlocal done
        done += 1
        if on_image is not None:
            on_image(done, len(images))

    result = calibrate(det, images, on_image=tick)
    result["checkpoint"] = str(ckpt)
    write_text(run / "calibration.json", json.dumps(result, indent=1) + "\n")
    if store:
        model, meta = load_checkpoint(ckpt)
        meta.update(
            threshold=result["threshold"],
            calibration={k: result[k] for k in ("f1", "precision", "recall", "n_images", "n_mitoses")},
        )
        save_checkpoint(ckpt, model, **meta)
    return result
