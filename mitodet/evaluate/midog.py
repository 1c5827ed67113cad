"""Official MIDOG scoring of "Multiple points" predictions against MIDOG ground truth.

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
from mitodet.io.atomic import write_text
from mitodet.io.files import read_json
from mitodet.schema import MATCH_RADIUS_UM, MITOTIC_FIGURE, NON_MITOTIC

RADIUS_MM = MATCH_RADIUS_UM / 1000.0  # the radius in the unit of MIDOG outputs
ROI_TYPES = ("hotspot", "challenging", "random")
VALID_NAMES = (MITOTIC_FIGURE, NON_MITOTIC)
MAX_MM = 10  # the 2025 evaluator rejects larger coordinates as "pixels, not mm"


@dataclass
class Case:
    """Ground truth of one image: points in mm plus its domain."""

    image: str
    points: list
    tumor_domain: int | str | None = None
    roi_type: str | None = None


@dataclass
class CaseResult:
    image: str
    gt: list
    pred: list  # [x, y, z, class (1 = mitotic figure), probability], as the evaluator keeps them
    score: DetectionScore
    tumor_domain: int | str | None = None
    roi_type: str | None = None
    warnings: list = field(default_factory=list)


def load_ground_truth(path: str | Path) -> dict[str, Case]:
    """Read a MIDOG ground-truth JSON (2021/2022 ``{image: [[x,y,z],...]}`` or 2025 dict form)."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise MitodetError(path, "ground truth must be a JSON object {image name: points}")
    cases = {}
    for name, v in raw.items():
        if isinstance(v, dict):
            if "annotations" not in v:
                raise MitodetError(path, f"{name}: no 'annotations'")
            roi = v.get("roi type")
            if roi is not None and roi not in ROI_TYPES:
                raise MitodetError(path, f"{name}: invalid roi type {roi!r}; valid: {list(ROI_TYPES)}")
            cases[name] = Case(name, [list(p) for p in v["annotations"]], v.get("tumor domain"), roi)
        elif isinstance(v, list):
            cases[name] = Case(name, [list(p) for p in v])
        else:
            raise MitodetError(path, f"{name}: expected a list of points or an object with 'annotations'")
        for p in cases[name].points:
            if len(p) < 2 or not all(isinstance(c, (int, float)) for c in p[:2]):
                raise MitodetError(path, f"{name}: bad point {p!r}")
    return cases


def parse_points(doc, source, strict: bool = False) -> tuple[list, list]:
    """Multiple-points JSON -> ([x, y, z, class, probability], warnings).

    ``strict`` applies the 2025 checks (name and probability required, coordinates in mm);
    otherwise missing fields default as in 2022 (class 1, probability 0.5) and suspect
    coordinates are only reported, which is how the published ``metrics.json`` was made.
    """
    if not isinstance(doc, dict) or "points" not in doc:
        raise MitodetError(source, 'results must be an object with a "points" field')
    out, warnings = [], []
    for p in doc["points"]:
        if not isinstance(p, dict) or "point" not in p:
            if strict:
                raise MitodetError(source, f"each point needs a 'point' field: {p!r}")
            warnings.append(f"point without coordinates skipped: {p!r}")
            continue
        name = p.get("name")
        if strict and (name is None or "probability" not in p):
            raise MitodetError(source, "each point needs 'name' and 'probability' (2022+ format)")
        if name is not None and name not in VALID_NAMES and strict:
            raise MitodetError(source, f"invalid name {name!r}; valid: {list(VALID_NAMES)}")
        cls = 1 if name is None or name == MITOTIC_FIGURE else 0
        prob = float(p.get("probability", 0.5))
        xyz = list(p["point"][:3]) + [0] * (3 - len(p["point"][:3]))
        if xyz[0] > MAX_MM or xyz[1] > MAX_MM or xyz[0] < -RADIUS_MM or xyz[1] < -RADIUS_MM:
            msg = f"coordinates {xyz[:2]} outside 0..{MAX_MM} mm (pixels instead of millimetres?)"
            if strict:
                raise MitodetError(source, msg)
            warnings.append(msg)
        out.append([*xyz, cls, prob])
    return out, warnings


def load_predictions(path: str | Path, images: Sequence[str], strict: bool = False) -> dict[str, tuple[list, list]]:
    """Predictions for each ground-truth image: image -> (points, warnings).

    ``path`` is a grand-challenge ``predictions.json`` (job list; each job's
    ``<pk>/[output/]mitotic-figures.json`` beside it), a folder of per-image files
    (``<stem>.mitotic-figures.json``, ``<stem>.json`` or ``<stem>/mitotic-figures.json``,
    as ``mitodet detect`` writes them), or one ``mitotic-figures.json`` for a single image.
    Images without a prediction file have no detections.
    """
    path = Path(path)
    found: dict[str, Path] = {}
    if path.is_dir() and (path / "predictions.json").is_file():
        path = path / "predictions.json"
    if path.is_file():
        doc = read_json(path)
        if isinstance(doc, list):  # grand-challenge job list
            for job in doc:
                try:
                    name = next(v["image"]["name"] for v in job["inputs"] if v.get("image"))
                    rel = next(
                        v["interface"]["relative_path"]
                        for v in job["outputs"]
                        if v["interface"]["slug"] == "mitotic-figures"
                    )
                except (KeyError, StopIteration, TypeError):
                    raise MitodetError(path, "not a grand-challenge predictions.json job list") from None
                for cand in (path.parent / job["pk"] / "output" / rel, path.parent / job["pk"] / rel):
                    if cand.is_file():
                        found[name] = cand
                        break
                else:
                    raise MitodetError(path.parent / job["pk"], f"no {rel} for {name}")
        elif len(images) == 1:
            found[images[0]] = path
        else:
            raise MitodetError(path, "a single prediction file but several ground-truth images; pass a folder")
    elif path.is_dir():
        for name in images:
            stem = Path(name).stem
            for cand in (
                path / f"{stem}.mitotic-figures.json",
                path / f"{stem}.json",
                path / stem / "mitotic-figures.json",
            ):
                if cand.is_file():
                    found[name] = cand
                    break
    else:
        raise MitodetError(path, "file not found")
    return {name: parse_points(read_json(f), f, strict) for name, f in found.items()}


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


def evaluate(truth_path: str | Path, pred_path: str | Path, strict: bool = False) -> dict:
    """Score predictions against ground truth; returns ``{"results": [...], "aggregates": {...}}``."""
    truth = load_ground_truth(truth_path)
    preds = load_predictions(pred_path, list(truth), strict=strict)
    results = score_cases(truth, preds)
    return {
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
