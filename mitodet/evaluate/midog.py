"""Official MIDOG scoring of "Multiple points" predictions against MIDOG ground truth.

The inputs (MIDOG JSON, QuPath GeoJSON, CSV point tables; checked) are read by
:mod:`mitodet.evaluate.sources`.

Reproduces the 2022/2025 evaluation containers (see ../shared/docs/midog-protocol.md):
F1 from TP/FP/FN pooled over images (only points named "mitotic figure"), the
same per tumour domain and per ROI type, AP (``ap.average_precision``, all points)
and FROC-AUC (``froc.froc_auc``, all points), all in millimetres with a 7.5 µm radius.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mitodet.errors import MitodetError
from mitodet.evaluate.ap import average_precision
from mitodet.evaluate.froc import froc_auc
from mitodet.evaluate.matching import DetectionScore, score_detection
from mitodet.evaluate.plots import plot_pr_froc
from mitodet.evaluate.sources import (  # noqa: F401  (re-exported: the readers of this module's inputs)
    MAX_MM,
    RADIUS_MM,
    ROI_TYPES,
    VALID_NAMES,
    Case,
    load_ground_truth,
    match_predictions,
    parse_points,
)
from mitodet.io.atomic import write_text


@dataclass
class CaseResult:
    image: str
    gt: list
    pred: list  # [x, y, z, class (1 = mitotic figure), probability], as the evaluator keeps them
    score: DetectionScore
    tumor_domain: int | str | None = None
    roi_type: str | None = None
    warnings: list = field(default_factory=list)


def load_predictions(
    path: str | Path, images: Sequence[str], strict: bool = False, mpp: float | None = None
) -> dict[str, tuple[list, list]]:
    """Predictions for each ground-truth image: image -> (points, warnings); see
    :func:`~mitodet.evaluate.sources.match_predictions`, which also returns the warnings about
    names of truth and predictions that do not pair up."""
    return match_predictions(path, images, strict, mpp)[0]


def score_cases(
    truth: dict[str, Case], preds: dict[str, tuple[list, list]], order: Sequence[str] | None = None
) -> list[CaseResult]:
    """Per-image official scoring; ``order`` fixes the image order (it breaks AP score ties)."""
    names = list(order) if order is not None else list(truth)
    results = []
    for name in names:
        if name not in truth:
            raise MitodetError(name, "no ground truth for this image")
        case = truth[name]
        points, warnings = preds.get(name, ([], []))
        mf = [[x, y, 0] for x, y, _z, cls, _p in points if cls == 1]
        sc = score_detection(case.points, mf, RADIUS_MM)
        results.append(CaseResult(name, case.points, points, sc, case.tumor_domain, case.roi_type, warnings))
    return results


def _block(prefix: str, rs: list[CaseResult]) -> dict:
    total = sum((r.score for r in rs), DetectionScore())
    gts = [r.gt for r in rs]
    preds = [[[x, y, p] for x, y, _z, _c, p in r.pred] for r in rs]
    return {
        f"{prefix}precision": total.precision,
        f"{prefix}recall": total.recall,
        f"{prefix}f1" if prefix else "f1_score": total.f1,
        f"{prefix}AP": average_precision(gts, preds) if rs else -1.0,
        f"{prefix}froc_auc": froc_auc(gts, preds, RADIUS_MM) if rs else float("nan"),
        f"{prefix}tp": total.true_positives,
        f"{prefix}fp": total.false_positives,
        f"{prefix}fn": total.false_negatives,
    }


def aggregate(results: list[CaseResult]) -> dict:
    """The official ``aggregates``: overall, per tumour domain, per ROI type (2025 keys)."""
    agg = _block("", results)
    domains = sorted({r.tumor_domain for r in results if r.tumor_domain is not None}, key=str)
    for d in domains:
        agg.update(_block(f"tumor_{d}_", [r for r in results if r.tumor_domain == d]))
    if any(r.roi_type for r in results):
        for roi in ROI_TYPES:
            agg.update(_block(f"roi_type_{roi}_", [r for r in results if r.roi_type == roi]))
    return agg


def evaluate(truth_path: str | Path, pred_path: str | Path, strict: bool = False, mpp: float | None = None) -> dict:
    """Score predictions against ground truth; returns ``{"results": [...], "aggregates": {...},
    "warnings": [...]}`` (``warnings``: names of truth and predictions that do not pair up).

    ``mpp`` (µm/px) converts point files in pixels (GeoJSON, CSV without mm columns) to mm."""
    truth = load_ground_truth(truth_path, mpp)
    preds, warnings = match_predictions(pred_path, list(truth), strict=strict, mpp=mpp)
    results = score_cases(truth, preds)
    return {
        "warnings": warnings,
        "results": [
            {
                "image": r.image,
                "tumor_domain": r.tumor_domain,
                "roi_type": r.roi_type,
                "gt": r.gt,
                "pred": r.pred,
                "metrics": r.score.as_dict(),
                "warnings": r.warnings,
            }
            for r in results
        ],
        "aggregates": aggregate(results),
    }


def write_evaluation(result: dict, out: str | Path) -> tuple[Path, Path]:
    """Write ``result`` of :func:`evaluate` as ``<out>/metrics.json`` (NaN as null) and the
    PR/FROC plot ``<out>/pr_froc.png``; returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = json.loads(json.dumps(result, default=float).replace("NaN", "null"))
    write_text(out / "metrics.json", json.dumps(doc, indent=2) + "\n")
    gts = [r["gt"] for r in result["results"]]
    preds = [[[x, y, p] for x, y, _z, _c, p in r["pred"]] for r in result["results"]]
    agg = result["aggregates"]
    plot_pr_froc(gts, preds, RADIUS_MM, out / "pr_froc.png", title=f"F1 {agg['f1_score']:.3f}  AP {agg['AP']:.3f}")
    return out / "metrics.json", out / "pr_froc.png"
