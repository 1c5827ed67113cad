"""Planning one input: its tissue mask on a low-resolution picture, then its jobs (the whole
image, or the slide regions that hold tissue), or the finished outputs it reuses."""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import numpy as np

from mitodet.errors import MitodetError, printable
from mitodet.infer.detector import Detector
from mitodet.infer.inputs import Item, Options, is_slide, outputs_for
from mitodet.infer.jobs import Input, Job
from mitodet.infer.provenance import (
    Reused,
    provenance,
    provenance_mismatch,
    read_finished,
    read_partial,
    region_key,
    stored_detections,
    stored_number,
)
from mitodet.infer.tissue import TissueMask, image_tissue, mask_mpp_for, shrink, tissue_mask
from mitodet.io.image import read_image
from mitodet.io.slide import Slide, UpsamplingWarning, open_slide
from mitodet.schema import match_radius_px

REGION = 4096  # region side in model pixels
REPORT_SIDE = 1200  # longest side of the report's pictures
MAX_REGIONS = 100_000  # ~6400 mm² at 0.25 µm/px: larger is a wrong spacing or a damaged header


def upsampling_note(name: str, mpp: float, model_mpp: float) -> str | None:
    """One line when the input is coarser than the model spacing (it gets upsampled), else None."""
    f = mpp / model_mpp
    return f"{name}: upsampled x{f:.3g} from {mpp:.3g} µm/px (model: {model_mpp:.3g} µm/px)" if f > 1.02 else None


def slide_thumbnail(slide: Slide, max_side: int = 4096, target_mpp: float | None = None) -> tuple[np.ndarray, float]:
    """The whole slide at most ``max_side`` pixels a side (or at ``target_mpp`` µm/px, if coarser
    than the slide), assembled block by block so that no read holds more than about REGION x
    REGION pixels of the pyramid level it comes from. Returns (image, f) with f = thumbnail px
    per level-0 px (<= 1)."""
    W0, H0 = slide.dimensions
    f = min(1.0, max_side / max(W0, H0))
    if target_mpp is not None:
        f = min(1.0, slide.mpp / target_mpp)
    t_mpp = slide.mpp / f
    W, H = slide.size_at(t_mpp)
    W, H = max(W, 1), max(H, 1)
    ds = slide.level_downsamples[slide.best_level(t_mpp)]
    block = int(max(64, min(max(W, H), REGION * f * ds)))  # thumbnail px whose source is ~REGION level px
    thumb = np.empty((H, W, 3), np.uint8)
    for y in range(0, H, block):
        for x in range(0, W, block):
            w, h = min(block, W - x), min(block, H - y)
            thumb[y : y + h, x : x + w] = slide.read_region(x, y, w, h, t_mpp)
    return thumb, f


def plan_input(
    detectors: list[Detector], item: Item, out: Path, opts: Options, note, inputs: Collection[Path] = ()
) -> Input | Reused:
    """What to do for one input; :class:`Reused` when its outputs exist, made exactly as asked
    now (same input file, models, settings: :func:`provenance`), and not ``force``."""
    path = item.path
    if not path.is_file():
        raise MitodetError(path, "file not found")
    wanted = provenance(detectors, item, opts)
    paths = outputs_for(out, item.stem)
    clash = next((p for p in paths.values() if p.resolve() in inputs), None)
    if clash is not None:  # e.g. a.tif's a.tissue.png over an input a.tissue.png of the same run
        raise MitodetError(path, f"its output {printable(str(clash))} would overwrite an input; give another --out")
    replaces = _replaced_input(paths["mitotic-figures.json"], wanted, item, out, opts)
    finished = _finished(paths, wanted, opts, note)
    if isinstance(finished, Reused):
        return finished
    base = Job(key=item.name, path=str(path), page=item.page, mpp=opts.mpp, threshold=opts.threshold, full=opts.full)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsamplingWarning)  # reported once through note() below
        if is_slide(path):
            inp = _plan_slide(detectors, item, out, opts, wanted, base, note)
        else:
            inp = _plan_image(item, opts, base)
    inp.provenance = wanted
    inp.replaces = replaces
    if finished is not None:
        _resummarise(inp, finished, wanted, paths["mitotic-figures.json"], note)
    text = upsampling_note(path.name, inp.spacing, detectors[0].mpp)
    if text and note:
        note(text)
    return inp


def _replaced_input(final: Path, wanted: dict, item: Item, out: Path, opts: Options) -> str | None:
    """The input (resolved path) whose outputs of this name ``--force`` replaces; without
    ``--force`` another input's outputs of this name are refused in one line."""
    if not final.exists():
        return None
    doc = read_finished(final)
    prov = doc.get("provenance") if doc is not None else None
    other = prov.get("input") if isinstance(prov, dict) else None
    if not isinstance(other, str) or other == wanted["input"]:
        return None
    if not opts.force:
        raise MitodetError(
            item.path,
            f"{out / item.stem}.* hold the results of another input of that name ({printable(other)}): "
            "give another --out, or --force to replace them",
        )
    return other


def _finished(paths: dict[str, Path], wanted: dict, opts: Options, note) -> Reused | dict | None:
    """:class:`Reused` where the finished outputs hold as asked; their document where only the
    summary is outdated (it may be summarised again, :func:`_resummarise`); else None."""
    final = paths["mitotic-figures.json"]
    if not final.exists() or opts.force:
        return None
    doc = read_finished(final)
    why = "unreadable" if doc is None else provenance_mismatch(doc.get("provenance"), wanted)
    if why is None and opts.overlay and not paths["overlay.png"].exists():
        why = "no overlay yet"
    if why is None and opts.report and not paths["report.html"].exists():
        why = "no report yet"
    if why is None and doc is not None:
        summary = doc.get("summary")
        return Reused(summary if isinstance(summary, dict) else None)
    if doc is not None and why is not None and why.startswith("outdated"):
        return doc
    if note:
        note(f"{final}: {why}; recomputing")
    return None


def _resummarise(inp: Input, finished: dict, wanted: dict, final: Path, note) -> None:
    """Where only summary options changed, the input takes its finished detections and no job."""
    inp.stored = stored_detections(finished, finished.get("provenance"), wanted, inp.spacing)
    if inp.stored is not None:  # the networks' work stands; only the summary is made again
        inp.jobs, inp.keys = [], []
        mpx = finished.get("summary", {}).get("network_mpx") if isinstance(finished.get("summary"), dict) else 0
        inp.stored_network_px = int(round(stored_number(mpx) * 1e6))
        if note:
            note(f"{final}: only the summary changed; summarising its detections again")
    elif note:
        note(f"{final}: {provenance_mismatch(finished.get('provenance'), wanted)}; recomputing")


def _plan_image(item: Item, opts: Options, base: Job) -> Input:
    """An image read whole: one job over its pixels."""
    image, stored = read_image(item.path, opts.mpp, page=item.page or 0)
    if stored is None:
        raise MitodetError(item.path, "no pixel spacing stored in the file; pass --mpp")
    tissue = image_tissue(image, stored) if opts.tissue else None
    inp = Input(item, item.path, item.stem, False, stored, (image.shape[1], image.shape[0]), tissue, [])
    inp.image = image
    inp.jobs.append(replace(base, spacing=stored, pixels=image))
    return inp


def _plan_slide(
    detectors: list[Detector], item: Item, out: Path, opts: Options, wanted: dict, base: Job, note
) -> Input:
    """A slide by regions: its thumbnail and tissue mask, the regions that hold tissue, and a job
    for each one its partial state does not already hold."""
    path, model_mpp = item.path, detectors[0].mpp
    if item.page is not None:
        raise MitodetError(path, "a multi-page TIFF stack of pages this large is not supported; split it")
    with open_slide(path, opts.mpp) as s:
        spacing, size = s.mpp, s.dimensions
        W, H = s.size_at(model_mpp)
        tissue, thumb = None, None
        if opts.tissue or opts.report:
            # one low-resolution read for the report's picture and the mask (which may be coarser)
            mask_mpp = mask_mpp_for(size[0] * spacing, size[1] * spacing)
            report_mpp = max(size) * spacing / REPORT_SIDE
            thumb = slide_thumbnail(s, target_mpp=min(mask_mpp, report_mpp))
            if opts.tissue:
                picture = shrink(thumb[0], spacing / thumb[1] / mask_mpp)
                tissue = tissue_mask(picture, spacing * size[0] / picture.shape[1])
    inp = Input(item, path, item.stem, True, spacing, size, tissue, [])
    inp.thumb = thumb
    rf = max(d.model.receptive_field for d in detectors)
    margin = 2 * (rf // 2 + 2 * int(np.ceil(match_radius_px(model_mpp))) // 2 + 2)  # even, > rf/2 + min dist
    inp.partial = out / f"{item.stem}.partial.json"
    n_regions = math.ceil(W / REGION) * math.ceil(H / REGION)
    if n_regions > MAX_REGIONS:
        raise MitodetError(
            path, f"{W} x {H} px at {model_mpp:g} µm/px is {n_regions} regions: is the spacing right? (--mpp)"
        )
    regions = _tissue_regions(W, H, tissue, model_mpp)
    inp.keys = [region_key(x, y) for x, y, _, _ in regions]
    f = model_mpp / spacing  # level-0 px per model px
    bounds = {
        region_key(x, y): ((x - 0.5) * f - 0.5, (y - 0.5) * f - 0.5, (x + w + 0.5) * f, (y + h + 0.5) * f)
        for x, y, w, h in regions
    }
    if opts.force:
        inp.partial.unlink(missing_ok=True)
    else:
        inp.state, why = read_partial(inp.partial, wanted, bounds)
        if why is not None and note:
            note(f"{inp.partial}: {why}; starting this slide again")
    for x, y, w, h in regions:
        if region_key(x, y) not in inp.state:
            inp.jobs.append(replace(base, region=(x, y, w, h), margin=margin))
    return inp


def _tissue_regions(W: int, H: int, tissue: TissueMask | None, model_mpp: float) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of the :data:`REGION` squares of a W x H (model px) slide that the grown
    tissue mask touches (all of them without a mask)."""
    need = tissue.need() if tissue is not None else None
    regions = []
    for y in range(0, H, REGION):
        for x in range(0, W, REGION):
            w, h = min(REGION, W - x), min(REGION, H - y)
            if need is not None and tissue is not None:
                g = model_mpp / tissue.mpp  # mask px per model px
                i0, j0 = int((y + 0.5) * g), int((x + 0.5) * g)
                i1, j1 = int(np.ceil((y + h) * g)) + 1, int(np.ceil((x + w) * g)) + 1
                if not need[i0:i1, j0:j1].any():
                    continue
            regions.append((x, y, w, h))
    return regions
