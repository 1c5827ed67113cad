"""Writing a finished input: every output file (MIDOG JSON last, as the "finished" marker),
the atypical call of each figure, the report, and the run's summary.csv."""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import numpy as np

from mitodet import __version__
from mitodet.classify.data import centred_square
from mitodet.classify.predict import AtypicalClassifier
from mitodet.infer.detector import Detector
from mitodet.infer.inputs import Item, Options, outputs_for
from mitodet.infer.jobs import Input
from mitodet.infer.outputs import midog_points, write_annotations_geojson, write_csv, write_geojson, write_overlay
from mitodet.infer.plan import REPORT_SIDE, shrink, slide_thumbnail
from mitodet.infer.report import CROP_UM, Crop, gallery_detections, ring_crop, write_report
from mitodet.infer.summary import SUMMARY_FIELDS, Summary, summarize
from mitodet.infer.tissue import write_mask_png
from mitodet.io.atomic import safe_cell, write_text
from mitodet.io.atomic import write_csv as write_table
from mitodet.io.slide import UpsamplingWarning, open_slide
from mitodet.reflect import centred_window
from mitodet.resample import resample
from mitodet.resources import BUNDLED_QUALITY, DEFAULT_MODELS
from mitodet.schema import Detection, match_radius_px

SUMMARY_CSV = "summary.csv"
RUN_FIELDS = ["status", "error"]  # summary.csv only: what this run did with the input (done, skipped, failed)


def overlay_caption(detectors: list[Detector], threshold: float | None) -> str:
    """Overlay subtitle: the model(s) and the threshold(s) applied."""
    t = [threshold if threshold is not None else d.threshold for d in detectors]
    kind = "agreement ensemble of " if len(detectors) == 2 else "model "
    return kind + " + ".join(d.name for d in detectors) + "   threshold " + " / ".join(f"{v:.3f}" for v in t)


def _windows(inp: Input, dets: list[Detection], mpp: float, side: int) -> list[np.ndarray]:
    """``side`` px windows centred on ``dets``, at ``mpp`` µm/px by the one spacing rule."""
    if inp.image is not None:
        src = int(math.ceil(side * mpp / inp.spacing)) + 4  # input px that hold the window
        return [
            centred_square(resample(centred_window(inp.image, d.x, d.y, src), inp.spacing, mpp)[0], side) for d in dets
        ]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsamplingWarning)
        with open_slide(inp.path, inp.spacing) as s:
            f = s.mpp / mpp  # window px per level-0 px
            for d in dets:
                x, y = (d.x + 0.5) * f - 0.5, (d.y + 0.5) * f - 0.5
                out.append(s.read_region(int(round(x)) - side // 2, int(round(y)) - side // 2, side, side, mpp))
    return out


def _crops(inp: Input, dets: list[Detection], model_mpp: float) -> list[Crop]:
    """Gallery crops of ``dets`` at the model spacing, the matching radius ringed."""
    side = int(round(CROP_UM / model_mpp))
    radius = match_radius_px(model_mpp)
    return [Crop(ring_crop(w, radius), d) for w, d in zip(_windows(inp, dets, model_mpp, side), dets, strict=True)]


def classify_atypical(inp: Input, dets: list[Detection], clf: AtypicalClassifier) -> list[Detection]:
    """``dets`` with P(atypical) set on each mitotic figure (candidates below the threshold: None)."""
    mfs = [d for d in dets if d.is_mitosis]
    p = iter(clf.probabilities(np.stack(_windows(inp, mfs, clf.mpp, clf.input))) if mfs else [])
    return [replace(d, atypical=float(next(p))) if d.is_mitosis else d for d in dets]


def thumbnail(inp: Input, max_side: int) -> tuple[np.ndarray, float]:
    """The input at most ``max_side`` pixels a side, and its scale (thumbnail px per input px)."""
    if inp.thumb is not None and max(inp.thumb[0].shape[:2]) >= min(max_side, max(inp.size)) - 1:
        return inp.thumb
    if inp.image is not None:
        f = min(1.0, max_side / max(inp.image.shape[:2]))
        small = shrink(inp.image, f)
        return small, small.shape[1] / inp.image.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsamplingWarning)
        with open_slide(inp.path, inp.spacing) as s:
            return slide_thumbnail(s, max_side)


def stored_precision(d: Detection, size: tuple[int, int]) -> Detection:
    """``d`` with its probabilities at the 6 decimals that the MIDOG JSON stores, and its centre
    on the image's pixel centres (a map position at the edge can fall half a pixel outside,
    which no point reader takes back)."""
    atyp = None if d.atypical is None else round(d.atypical, 6)
    x, y = min(max(d.x, 0.0), size[0] - 1.0), min(max(d.y, 0.0), size[1] - 1.0)
    return replace(d, x=x, y=y, probability=round(d.probability, 6), atypical=atyp)


def write_outputs(
    inp: Input, dets: list[Detection], network_px: int, detectors: list[Detector], out: Path, opts: Options
) -> Summary:
    """Write every output of a finished input; the MIDOG JSON last, as the 'finished' marker.

    Long because it writes each output in turn, the MIDOG JSON last."""
    paths = outputs_for(out, inp.stem)
    models = " + ".join(d.name for d in detectors)
    t = [opts.threshold if opts.threshold is not None else d.threshold for d in detectors]
    if opts.atypical is not None and inp.stored is None:  # re-summarised: P(atypical) is stored
        dets = classify_atypical(inp, dets, opts.atypical)
    dets = [stored_precision(d, inp.size) for d in dets]  # every output (and a re-summarising) sees the same numbers
    t_atyp = opts.atypical.threshold if opts.atypical is not None else None
    tissue_mm2 = (
        inp.tissue.area_mm2 if inp.tissue is not None else inp.size[0] * inp.size[1] * (inp.spacing / 1000) ** 2
    )
    summary, hs = summarize(
        inp.item.name,
        dets,
        inp.spacing,
        inp.size,
        tissue_mm2,
        inp.tissue.fraction if inp.tissue is not None else 1.0,
        opts.hotspot_mm2,
        network_px / 1e6,
        models,
        " / ".join(f"{v:.4f}" for v in t),
        t_atyp,
    )
    listed = [d for d in dets if d.is_mitosis] if opts.positives_only else dets
    write_csv(paths["csv"], listed, inp.spacing, atypical=t_atyp is not None)
    key = f"{inp.provenance.get('input', inp.item.name)}|{inp.item.page}"  # the input file (and page)
    write_geojson(paths["geojson"], listed, t_atyp, key=key)
    outlines = inp.tissue.outlines(inp.spacing) if inp.tissue is not None else []
    write_annotations_geojson(paths["annotations.geojson"], outlines, hs, opts.hotspot_mm2, key)
    caption = overlay_caption(detectors, opts.threshold)
    if inp.tissue is not None:
        write_mask_png(paths["tissue.png"], inp.tissue)
    thumb, scale = None, 1.0
    if opts.report or (opts.overlay and inp.image is None):
        thumb, scale = thumbnail(inp, REPORT_SIDE if not opts.overlay or inp.image is not None else 4096)
    if opts.overlay:
        if inp.image is not None:
            write_overlay(
                paths["overlay.png"],
                inp.image,
                dets,
                match_radius_px(inp.spacing),
                title=_title(inp.item),
                subtitle=caption,
                threshold=t[0],
            )
        else:
            assert thumb is not None
            dets_o = [
                Detection((d.x + 0.5) * scale - 0.5, (d.y + 0.5) * scale - 0.5, d.probability, d.label) for d in dets
            ]
            write_overlay(
                paths["overlay.png"],
                thumb,
                dets_o,
                match_radius_px(inp.spacing) * scale,
                title=_title(inp.item),
                subtitle=caption,
                threshold=t[0],
            )
    if opts.report:
        assert thumb is not None
        if max(thumb.shape[:2]) > REPORT_SIDE:
            small = shrink(thumb, REPORT_SIDE / max(thumb.shape[:2]))
            scale *= small.shape[1] / thumb.shape[1]
            thumb = small
        shown = gallery_detections(dets)
        write_report(
            paths["report.html"],
            summary,
            hs,
            thumb,
            scale,
            inp.tissue.mask if inp.tissue is not None else None,
            dets,
            _crops(inp, shown, detectors[0].mpp),
            caption,
            threshold=t[0],
            context=report_context(detectors),
        )
    doc = midog_points(listed, inp.spacing)
    doc["summary"] = summary.row()
    doc["provenance"] = inp.provenance
    write_text(paths["mitotic-figures.json"], json.dumps(doc, indent=1) + "\n")
    if inp.partial is not None:
        inp.partial.unlink(missing_ok=True)
    return summary


def report_context(detectors: list[Detector]) -> str:
    """The line every report carries: version, date, and what the results are and are worth."""
    bundled = {p.name for p in DEFAULT_MODELS}
    quality = (
        BUNDLED_QUALITY
        if all(d.name in bundled for d in detectors)
        else "models given with --model: see their own training run for their quality"
    )
    return (
        f"mitodet {__version__}, {time.strftime('%Y-%m-%d')}. Research use only: candidates for a "
        f"pathologist's review, not a diagnosis; {quality} (mitodet/weights/MODEL_CARD.md)."
    )


def _title(item: Item) -> str:
    return item.path.name if item.page is None else f"{item.path.name}, page {item.page + 1} of {item.pages}"


def write_summary(out: Path, rows: list[dict], replaced: Collection[str] = ()) -> Path:
    """Merge ``rows`` (one per input) into ``<out>/summary.csv``: rows of inputs not in this
    run are kept (first, in their order), then this run's rows in input order; rows of the inputs
    in ``replaced`` (resolved paths: their outputs were replaced) are dropped."""
    path = Path(out) / SUMMARY_CSV
    mine = {safe_cell(r["input"]) for r in rows}  # old rows were read back as written (neutralised)
    old = []
    if path.exists():
        try:
            with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
                old = [
                    r
                    for r in csv.DictReader(fh)
                    if r.get("input") not in mine and str(Path(r.get("input") or "").resolve()) not in replaced
                ]
        except (OSError, ValueError, csv.Error):
            old = []
    write_table(path, [*SUMMARY_FIELDS, *RUN_FIELDS], old + rows)
    return path
