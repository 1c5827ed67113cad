"""Detection on the validation side during training: sensitivity, false detections per mm², and
the F1 they imply at a realistic mitosis density (:mod:`mitodet.evaluate.density`).

The network runs exactly as ``mitodet detect`` runs it (a :class:`~mitodet.infer.Detector` on
each validation image at its native spacing, local maxima, the 7.5 µm radius), on the validation
crops (their mitoses give the sensitivity, the rest of each crop counts for false detections)
and on validation tissue tiles that training never sees (false detections only). The threshold
maximising the density F1 is returned, with s / f / F1 per source and scanner at that threshold.
"""

from __future__ import annotations

import copy
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mitodet.evaluate.density import best_density_threshold, candidate_thresholds, density_scores
from mitodet.infer.calibrate import candidates_um
from mitodet.infer.detector import Detector
from mitodet.io.image import read_image
from mitodet.model.export import fold
from mitodet.schema import DEFAULT_MPP, MATCH_RADIUS_UM, Point

CANDIDATE_FLOOR = 0.01  # candidates below this never win the threshold search
TISSUE_GROUP = "tissue"


@dataclass
class DetectionItem:
    """One validation image: pixels at their native spacing, mitoses (px), its report group."""

    id: str
    image: np.ndarray
    mpp: float
    points: list[Point]
    group: str
    area_mm2: float = field(default=0.0)
    field: bool = False  # a whole field with every mitosis labelled: scored with the official F1


def tissue_area_mm2(pixels: np.ndarray, mpp: float) -> float:
    """Area (mm²) of the tissue in an image by the rule ``mitodet detect`` uses
    (:func:`mitodet.infer.tissue.image_tissue`), so a count per mm² in validation and
    calibration means what it means in a detection summary."""
    from mitodet.infer.tissue import image_tissue

    return image_tissue(pixels, mpp).area_mm2


def group_of(domain: dict) -> str:
    """Report group of a validation image: its source, and its scanner where one is known."""
    source = domain.get("source", "labelled")
    scanner = domain.get("scanner")
    return f"{source}: {scanner}" if scanner and "unknown" not in scanner else source


def detection_items(val_images: Sequence, tissue: Sequence[str | os.PathLike] = ()) -> list[DetectionItem]:
    """Validation images (objects with ``.id .image .mpp .points .domain``) and tissue tiles as items.

    An image whose other cells are unlabelled (``domain["labels"] == "centre only"``: AtNorM-MD)
    gets no area: it counts for the sensitivity only, since a detection there that matches no
    label may be a real mitosis (:func:`mitodet.evaluate.density.density_scores`)."""
    items = []
    for v in val_images:
        img = v.image
        exhaustive = v.domain.get("labels") != "centre only"
        items.append(
            DetectionItem(
                v.id,
                img,
                v.mpp,
                list(v.points),
                group_of(v.domain),
                img.shape[0] * img.shape[1] * (v.mpp / 1000.0) ** 2 if exhaustive else 0.0,
                v.domain.get("labels") == "exhaustive",
            )
        )
    for t in tissue:
        pixels, mpp = read_image(t)
        mpp = mpp or DEFAULT_MPP
        items.append(
            DetectionItem(f"tissue:{Path(t).name}", pixels, mpp, [], TISSUE_GROUP, tissue_area_mm2(pixels, mpp))
        )
    return items


@torch.no_grad()
def detect_items(
    model,
    items: Sequence[DetectionItem],
    model_mpp: float,
    interpolation: str,
    device="cpu",
    on_item: Callable[[int, int], None] | None = None,
) -> tuple[dict, dict, dict]:
    """Candidates of a (training) network on every item -> (truth, pred, area) keyed by item id,
    coordinates in µm so that images of different spacings pool."""
    net = fold(copy.deepcopy(model).float().eval().to(device), channels_last=torch.device(device).type == "cpu")
    det = Detector(
        net, mpp=model_mpp, threshold=0.5, device=device, interpolation=interpolation, tile=1024, batch_size=8
    )
    progress = (lambda done, total, key: on_item(done, total)) if on_item else None
    truth, pred = candidates_um(det, items, CANDIDATE_FLOOR, progress)
    area = {it.id: it.area_mm2 for it in items}
    return truth, pred, area


def fields_f1(truth: dict, pred: dict, fields: set[str], threshold: float) -> dict:
    """The official (pooled) F1 over the whole labelled fields at one threshold."""
    sc = density_scores(truth, pred, {k: 1.0 for k in fields}, MATCH_RADIUS_UM, threshold)
    tp, fn, fp = sc["tp"], sc["fn"], sc["fp"]
    f1 = 2 * tp / (2 * tp + fn + fp) if tp + fn + fp else float("nan")
    return {"f1": f1, "tp": tp, "fn": fn, "fp": fp}


def best_combined_threshold(truth: dict, pred: dict, area: dict, fields: set[str], density: float) -> dict:
    """The threshold maximising the mean of the F1 at density (every validation image) and the
    official F1 of the whole fields: a rule held by two kinds of evidence (many labs' crops, one
    lab's exhaustive fields), so that it depends less on any one of them."""
    best: dict = {"threshold": 1.0, "f1_mean": -1.0}
    for t in candidate_thresholds(pred, area):
        sc = density_scores(truth, pred, area, MATCH_RADIUS_UM, t, density)
        ff = fields_f1(truth, pred, fields, t)["f1"]
        mean = float(np.nanmean([sc["f1_density"], ff]))
        if mean > best["f1_mean"]:
            best = {"threshold": t, **sc, "f1_mean": mean}
    return best


def density_report(
    truth: dict,
    pred: dict,
    area: dict,
    groups: dict[str, str],
    density: float,
    threshold: float | None = None,
    fields: set[str] | None = None,
    rule: str = "f1_density",
) -> dict:
    """The threshold by ``rule`` (``f1_density``; ``f1_mean``: see :func:`best_combined_threshold`;
    ``f1_fields``: the official F1 of the fields alone, a lab's own fine-tuning) or the given one,
    and s / f / F1 overall and per group there. With whole ``fields``, also their official F1
    there (``f1_fields``) and at their own best threshold (``fields_best``)."""
    fields = fields or set()
    if threshold is None and rule == "f1_fields" and fields:
        threshold = max(
            candidate_thresholds(pred, fields, 2000), key=lambda t: fields_f1(truth, pred, fields, t)["f1"], default=0.5
        )
        best = {"threshold": threshold, **density_scores(truth, pred, area, MATCH_RADIUS_UM, threshold, density)}
    elif threshold is None and rule == "f1_mean" and fields:
        best = best_combined_threshold(truth, pred, area, fields, density)
        threshold = best["threshold"]
    elif threshold is None:
        best = best_density_threshold(truth, pred, area, MATCH_RADIUS_UM, density)
        threshold = best["threshold"]
    else:
        best = {"threshold": threshold, **density_scores(truth, pred, area, MATCH_RADIUS_UM, threshold, density)}
    by_group: dict[str, list[str]] = defaultdict(list)
    for k, g in groups.items():
        by_group[g].append(k)
    best["groups"] = {}
    for g, keys in sorted(by_group.items()):
        sc = density_scores(truth, pred, {k: area[k] for k in keys}, MATCH_RADIUS_UM, threshold, density)
        best["groups"][g] = {
            k: sc[k] for k in ("sensitivity", "fp_per_mm2", "f1_density", "tp", "fn", "fp", "area_mm2")
        }
    if fields:
        best["f1_fields"] = fields_f1(truth, pred, fields, threshold)["f1"]
        own = max(
            ({"threshold": t, **fields_f1(truth, pred, fields, t)} for t in candidate_thresholds(pred, fields, 2000)),
            key=lambda r: r["f1"],
            default={"threshold": 1.0, "f1": 0.0},
        )
        best["fields_best"] = own
    best.pop("curve", None)
    return best


def validate_detection(
    model,
    items: Sequence[DetectionItem],
    model_mpp: float,
    interpolation: str,
    density: float,
    device="cpu",
    rule: str = "f1_density",
    on_item: Callable[[int, int], None] | None = None,
) -> dict:
    """Detection validation of ``model``: the threshold by ``rule`` and the scores there
    (``on_item(items done, items)`` follows the detection)."""
    truth, pred, area = detect_items(model, items, model_mpp, interpolation, device, on_item)
    fields = {it.id for it in items if it.field}
    return density_report(truth, pred, area, {it.id: it.group for it in items}, density, fields=fields, rule=rule)
