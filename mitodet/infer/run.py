"""Running detection over files: images, folders, whole slides (by regions, resumable), in this
process or on a Ray cluster (:mod:`mitodet.infer.cluster`).

Per input the driver (this module) finds the tissue on a low-resolution picture, splits the work
into jobs (the whole image, or the slide regions that hold tissue), hands them to an executor,
keeps the finished regions of a slide in ``<stem>.partial.json`` (an interrupted run resumes
there) and, once an input is complete, writes its outputs and its row of ``summary.csv``. A job
gives the same detections wherever it runs (map values do not depend on the process, thread
count or tiling: :mod:`mitodet.infer.dense`), and results are assembled in region order, so a
cluster run writes the same bytes as a run in one process.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from mitodet import __version__
from mitodet.classify.data import centred_square
from mitodet.classify.predict import AtypicalClassifier
from mitodet.errors import MitodetError, printable
from mitodet.infer.detector import Detector
from mitodet.infer.ensemble import detect_image
from mitodet.infer.outputs import midog_points, write_annotations_geojson, write_csv, write_geojson, write_overlay
from mitodet.infer.report import CROP_UM, Crop, gallery_detections, ring_crop, write_report
from mitodet.infer.summary import DEFAULT_HOTSPOT_MM2, SUMMARY_FIELDS, Summary, summarize
from mitodet.infer.tissue import TissueMask, mask_mpp_for, tissue_mask, write_mask_png
from mitodet.io.atomic import remove_stale_temps, safe_cell, write_text
from mitodet.io.atomic import write_csv as write_table
from mitodet.io.files import check_output_dir, parse_json
from mitodet.io.image import IMAGE_SUFFIXES, image_size, read_image, tiff_stack_pages
from mitodet.io.slide import Slide, UpsamplingWarning, open_slide
from mitodet.reflect import centred_window
from mitodet.resample import resample
from mitodet.resources import BUNDLED_QUALITY, DEFAULT_MODELS
from mitodet.schema import MITOTIC_FIGURE, NON_MITOTIC, Detection, count_mitoses, match_radius_px, mm_to_px

SLIDE_SUFFIXES = {".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"}
SLIDE_MIN_PIXELS = 8192 * 8192  # larger inputs are processed by regions (memory bounded by the region)
REGION = 4096  # region side in model pixels
REPORT_SIDE = 1200  # longest side of the report's pictures
MAX_REGIONS = 100_000  # ~6400 mm² at 0.25 µm/px: larger is a wrong spacing or a damaged header
PARTIAL_FORMAT = "mitodet-partial/3"
SUMMARY_CSV = "summary.csv"
RUN_FIELDS = ["status", "error"]  # summary.csv only: what this run did with the input (done, skipped, failed)
OWN_PICTURES = (".overlay.png", ".tissue.png")  # what detect writes that a folder listing would take for inputs


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Files of the given paths; folders contribute their images and slides (sorted, not
    recursive). A file given twice (or through a folder and by name) counts once."""
    files, seen = [], set()
    for p in inputs:
        p = Path(p)
        if p.is_dir():  # a folder's images, not the pictures detect itself writes (an --out used as input)
            found = sorted(
                f
                for f in p.iterdir()
                if f.is_file()
                and f.suffix.lower() in IMAGE_SUFFIXES | SLIDE_SUFFIXES
                and not f.name.lower().endswith(OWN_PICTURES)
            )
        else:
            found = [p]  # missing files are reported (and skipped) when processed
        for f in found:
            key = f.resolve() if f.exists() else f.absolute()
            if key not in seen:
                seen.add(key)
                files.append(f)
    if not files:
        raise MitodetError(", ".join(map(str, inputs)), "no images found")
    return files


@dataclass(frozen=True)
class Item:
    """One input of a run: a file, or one page of a multi-page TIFF stack, and the stem that
    names its outputs (unique within the run)."""

    path: Path
    stem: str
    page: int | None = None  # 0-based page of a stack
    pages: int = 1

    @property
    def name(self) -> str:
        """What the user sees (and the ``input`` column of summary.csv)."""
        return str(self.path) if self.page is None else f"{self.path} [page {self.page + 1}/{self.pages}]"


def _unique_stems(paths: list[Path]) -> list[str]:
    """Output stems for distinct files: the file's stem; where two share it (``img.jpg`` and
    ``img.png``, or ``a/x.jpg`` and ``b/x.jpg``; compared ignoring case, as some file systems
    do), the whole name, then as many parent folders as tell them apart (``a_x.jpg``)."""
    stems = [p.stem for p in paths]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(stems):
        groups.setdefault(s.lower(), []).append(i)
    for idx in groups.values():
        if len(idx) < 2:
            continue
        parts = [(paths[i].resolve() if paths[i].exists() else paths[i].absolute()).parts for i in idx]
        for k in range(1, max(len(p) for p in parts) + 1):
            names = ["_".join(p[-k:]).lstrip("_/") for p in parts]
            if len({n.lower() for n in names}) == len(names):
                break
        for i, n in zip(idx, names, strict=True):
            stems[i] = n
    used: set[str] = set()
    for i, s in enumerate(stems):  # a disambiguated name may meet another input's plain stem
        n, k = s, 2
        while n.lower() in used:
            n, k = f"{s}-{k}", k + 1
        used.add(n.lower())
        stems[i] = n
    return stems


def plan_items(files: list[Path]) -> list[Item]:
    """The run's inputs: one per file, one per page of a multi-page TIFF stack (outputs
    ``<stem>-page01`` ...), each with a unique output stem (:func:`_unique_stems`)."""
    files = [Path(f) for f in files]
    items = []
    for path, stem in zip(files, _unique_stems(files), strict=True):
        n = tiff_stack_pages(path) if path.is_file() else 1
        if n == 1:
            items.append(Item(path, stem))
        else:
            width = max(2, len(str(n)))
            items += [Item(path, f"{stem}-page{i + 1:0{width}d}", i, n) for i in range(n)]
    return items


def load_detectors(paths: list[Path], **kwargs) -> list[Detector]:
    """The detectors of one or two checkpoints (``backend`` default "auto": ONNX Runtime on the CPU)."""
    kwargs.setdefault("backend", "auto")
    if len(paths) > 2:
        raise MitodetError(None, f"give one model, or two for the ensemble (got {len(paths)})")
    return [Detector.from_checkpoint(p, **kwargs) for p in paths]


def outputs_for(out: Path, stem: str) -> dict[str, Path]:
    return {
        k: out / f"{stem}.{k}"
        for k in (
            "mitotic-figures.json",
            "csv",
            "geojson",
            "annotations.geojson",
            "overlay.png",
            "report.html",
            "tissue.png",
        )
    }


def overlay_caption(detectors: list[Detector], threshold: float | None) -> str:
    """Overlay subtitle: the model(s) and the threshold(s) applied."""
    t = [threshold if threshold is not None else d.threshold for d in detectors]
    kind = "agreement ensemble of " if len(detectors) == 2 else "model "
    return kind + " + ".join(d.name for d in detectors) + "   threshold " + " / ".join(f"{v:.3f}" for v in t)


def _is_slide(path: Path) -> bool:
    if path.suffix.lower() in SLIDE_SUFFIXES:
        return True
    if path.suffix.lower() in {".tif", ".tiff"}:
        w, h = image_size(path)
        return w * h > SLIDE_MIN_PIXELS
    return False


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


def shrink(image: np.ndarray, f: float) -> np.ndarray:
    """``image`` scaled by ``f`` <= 1 (antialiased), at least one pixel a side."""
    if f >= 1:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))


def image_tissue(image: np.ndarray, mpp: float) -> TissueMask:
    """The tissue mask of an image in memory (at least 256 mask pixels on its longer side)."""
    h, w = image.shape[:2]
    m_mpp = min(mask_mpp_for(w * mpp, h * mpp), max(mpp, max(w, h) * mpp / 256))
    f = mpp / m_mpp
    small = shrink(image, f)
    return tissue_mask(small, mpp * w / small.shape[1])


# -- jobs ------------------------------------------------------------------------------------
@dataclass
class Job:
    """One unit of work: a whole image, or one region of a slide (x, y, w, h in model pixels)."""

    key: str  # the input it belongs to (:attr:`Item.name`)
    path: str
    page: int | None  # of a multi-page TIFF stack
    mpp: float | None  # spacing override (--mpp)
    threshold: float | None
    full: bool  # full ensemble instead of the cascade
    region: tuple[int, int, int, int] | None = None
    margin: int = 0
    spacing: float | None = None  # images: the spacing of the pixels
    pixels: np.ndarray | None = None  # images, in this process only (a cluster worker reads the file)


@dataclass
class JobResult:
    dets: list[list]  # [x, y, probability, label] in input (level-0) pixels
    network_px: int = 0


class Executor(Protocol):
    def run(
        self, jobs: Iterable[Job], tissue_of: Callable[[Job], TissueMask | None]
    ) -> Iterator[tuple[Job, JobResult | None, Exception | None]]: ...


_SLIDES: dict[tuple[str, float | None], Slide] = {}


def _open_cached(path: str, mpp: float | None) -> Slide:
    """Slides stay open between regions (one at a time per process)."""
    key = (path, mpp)
    if key not in _SLIDES:
        for s in _SLIDES.values():
            s.close()
        _SLIDES.clear()
        _SLIDES[key] = open_slide(path, mpp)
    return _SLIDES[key]


def close_slides() -> None:
    for s in _SLIDES.values():
        s.close()
    _SLIDES.clear()


def run_job(
    detectors: list[Detector],
    job: Job,
    tissue: TissueMask | None,
    progress: Callable[[int, int], None] | None = None,
) -> JobResult:
    """Detections of one job (see :class:`Job`), in input (level-0) pixels."""
    before = sum(d.stats["network_px"] for d in detectors)
    model_mpp = detectors[0].mpp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsamplingWarning)  # the driver notes it once per input
        if job.region is None:
            pixels = job.pixels
            spacing = job.spacing
            if pixels is None:
                pixels, stored = read_image(job.path, job.mpp, page=job.page or 0)
                spacing = job.mpp or stored
            if spacing is None:
                raise MitodetError(job.path, "no pixel spacing stored in the file; pass --mpp")
            need = tissue.need_fn(spacing) if tissue is not None else None
            dets = detect_image(detectors, pixels, spacing, job.threshold, progress, need=need, full=job.full)
            found = [[d.x, d.y, d.probability, d.label] for d in dets]
        else:
            slide = _open_cached(job.path, job.mpp)
            x, y, w, h = job.region
            m = job.margin
            f = model_mpp / slide.mpp  # level-0 px per model px
            region = slide.read_region(x - m, y - m, w + 2 * m, h + 2 * m, model_mpp, detectors[0].interpolation)
            need = tissue.need_fn(model_mpp, x - m, y - m) if tissue is not None else None
            found = []
            for d in detect_image(detectors, region, model_mpp, job.threshold, progress, need=need, full=job.full):
                cx, cy = d.x - m, d.y - m
                if 0 <= cx < w and 0 <= cy < h:  # keep the region core only
                    found.append([(x + cx + 0.5) * f - 0.5, (y + cy + 0.5) * f - 0.5, d.probability, d.label])
    return JobResult(found, sum(d.stats["network_px"] for d in detectors) - before)


class LocalExecutor:
    """Jobs one after the other in this process."""

    def __init__(self, detectors: list[Detector], on_tiles: Callable[[int, int], None] | None = None):
        self.detectors, self.on_tiles = detectors, on_tiles

    def run(self, jobs, tissue_of):
        try:
            for job in jobs:
                try:
                    # tiles of an image, or of a slide's region: a bar with an ETA within it
                    yield job, run_job(self.detectors, job, tissue_of(job), self.on_tiles), None
                except (MitodetError, OSError, ValueError) as err:
                    yield job, None, err
        finally:
            close_slides()


# -- the driver ------------------------------------------------------------------------------
@dataclass
class Options:
    """What ``mitodet detect`` does with each input (besides the models)."""

    mpp: float | None = None
    threshold: float | None = None
    overlay: bool = False
    force: bool = False
    positives_only: bool = False
    full: bool = False  # run both models everywhere (all candidates of both listed)
    tissue: bool = True  # skip tiles without tissue; counts per mm² of tissue
    hotspot_mm2: float = DEFAULT_HOTSPOT_MM2
    report: bool = True
    atypical: AtypicalClassifier | None = None  # P(atypical) of every mitotic figure (None: off)


@dataclass
class _Input:
    item: Item
    path: Path
    stem: str
    slide: bool
    spacing: float
    size: tuple[int, int]  # (width, height) in input (level-0) pixels
    tissue: TissueMask | None
    jobs: list[Job]
    image: np.ndarray | None = None
    thumb: tuple[np.ndarray, float] | None = None  # slides: a low-resolution picture, its scale
    state: dict[str, Any] = field(default_factory=dict)  # slides: region key -> {"dets", "network_px"}
    keys: list[str] = field(default_factory=list)  # slides: every region with tissue, in order
    partial: Path | None = None
    failed: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    replaces: str | None = None  # the input (resolved path) whose outputs of the same name --force replaces
    stored: list[Detection] | None = None  # re-summarised: the detections of its finished outputs
    stored_network_px: int = 0


def _region_key(x: int, y: int) -> str:
    return f"{x},{y}"


# -- provenance: what made an output, so that only an exact match is reused ------------------
# What each field stands for, in the note that says why an output is recomputed.
PROVENANCE_LABELS = {
    "input": "input file",
    "page": "page",
    "input_bytes": "input file",
    "input_mtime_ns": "input file",
    "input_sample_sha256": "input file",
    "models": "models",
    "device": "--device",
    "threshold": "--threshold",
    "mpp": "--mpp",
    "full_ensemble": "--full-ensemble",
    "tissue": "--tissue",
    "positives_only": "--positives-only",
    "hotspot_mm2": "--hotspot-mm2",
    "atypical": "atypical classifier (--no-atypical, --atypical-model)",
    "mitodet": "mitodet version",
}


def provenance(detectors: list[Detector], item: Item, opts: Options) -> dict[str, Any]:
    """What an input's outputs (and a slide's partial state) are made from: the input file's
    identity (path, size, modification time), page, the models (file hash, backend), device,
    effective thresholds, spacing override, the options that change the outputs, mitodet's
    version. JSON values, compared as stored."""
    st = item.path.stat()
    doc = {
        "input": str(item.path.resolve()),
        "page": item.page,
        "input_bytes": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "input_sample_sha256": sample_sha256(item.path),
        "models": [d.identity for d in detectors],
        "device": str(detectors[0].device),
        "threshold": [opts.threshold if opts.threshold is not None else d.threshold for d in detectors],
        "mpp": opts.mpp,
        "full_ensemble": opts.full,
        "tissue": opts.tissue,
        "positives_only": opts.positives_only,
        "hotspot_mm2": opts.hotspot_mm2,
        "atypical": None
        if opts.atypical is None
        else {"sha256": opts.atypical.sha256, "threshold": opts.atypical.threshold},
        "mitodet": __version__,
    }
    return json.loads(json.dumps(doc))  # as it reads back from a file


SAMPLE_BYTES = 1 << 20


def sample_sha256(path: Path) -> str:
    """SHA-256 of a file's first and last MB and its size: cheap on a 3 GB slide, and it tells a
    rewritten file of the same size and modification time from the one an output was made from."""
    import hashlib

    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as fh:
        h.update(fh.read(SAMPLE_BYTES))
        if size > SAMPLE_BYTES:
            fh.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
            h.update(fh.read(SAMPLE_BYTES))
    h.update(str(size).encode())
    return h.hexdigest()


def provenance_mismatch(stored: Any, wanted: dict[str, Any]) -> str | None:
    """None when ``stored`` equals ``wanted``; else why not, in a few words."""
    if not isinstance(stored, dict):
        return "outdated (no record of how it was made)"
    keys = [str(k) for k in wanted if stored.get(k) != wanted[k]] + [str(k) for k in stored if k not in wanted]
    if not keys:
        return None
    labels: list[str] = [PROVENANCE_LABELS.get(k, k) for k in keys]
    return f"outdated ({', '.join(dict.fromkeys(labels))} changed)"


SUMMARY_ONLY = {"hotspot_mm2"}  # options that change the summary, not the detections


def stored_detections(doc: dict, stored_prov: Any, wanted: dict[str, Any], mpp: float) -> list[Detection] | None:
    """The detections of a finished output whose provenance differs from ``wanted`` in
    :data:`SUMMARY_ONLY` options alone (so they can be summarised again without the networks);
    None otherwise, or when its points do not read back."""
    if not isinstance(stored_prov, dict) or set(stored_prov) != set(wanted):
        return None
    changed = {k for k in wanted if stored_prov.get(k) != wanted[k]}
    if not changed or not changed <= SUMMARY_ONLY:
        return None
    try:
        dets = []
        for p in doc["points"]:
            x, y = (float(v) for v in p["point"][:2])
            atyp = p.get("atypical_probability")
            dets.append(
                Detection(mm_to_px(x, mpp), mm_to_px(y, mpp), float(p["probability"]), str(p["name"]),
                          None if atyp is None else float(atyp))
            )  # fmt: skip
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return dets


@dataclass
class Reused:
    """An input whose outputs exist, made exactly as asked now: the summary stored in its JSON."""

    summary: dict | None


def _read_finished(final: Path) -> dict | None:
    """A finished input's MIDOG JSON (None when unreadable or not an object)."""
    try:
        doc = parse_json(final.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a damaged leftover is recomputed, never a traceback
        return None
    return doc if isinstance(doc, dict) else None


_REGION_KEY = re.compile(r"^\d+,\d+$")


def _valid_region(value: Any, bounds: tuple[float, float, float, float]) -> bool:
    """A stored region result: {"dets": [[x, y, probability, label], ...], "network_px": n >= 0}
    with finite coordinates inside the region's ``bounds`` (x0, y0, x1, y1 in level-0 pixels)."""
    if not isinstance(value, dict) or not isinstance(value.get("dets"), list):
        return False
    n = value.get("network_px")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return False
    x0, y0, x1, y1 = bounds
    for d in value["dets"]:
        if not isinstance(d, list) or len(d) != 4 or d[3] not in (MITOTIC_FIGURE, NON_MITOTIC):
            return False
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in d[:3]):
            return False
        if not (x0 <= d[0] < x1 and y0 <= d[1] < y1 and 0 <= d[2] <= 1):
            return False
    return True


def _read_partial(
    partial: Path, wanted: dict[str, Any], bounds: dict[str, tuple[float, float, float, float]]
) -> tuple[dict, str | None]:
    """The finished regions in ``partial`` -> (regions, None), or ({}, why it is not used) when
    it is unreadable, malformed, made with other settings or holds results outside its regions."""
    try:
        doc = parse_json(partial.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError, RecursionError):
        return {}, "unreadable"
    if not isinstance(doc, dict) or doc.get("format") != PARTIAL_FORMAT or not isinstance(doc.get("regions"), dict):
        return {}, "not a mitodet partial state of this version"
    why = provenance_mismatch(doc.get("provenance"), wanted)
    if why is not None:
        return {}, why
    regions = doc["regions"]
    for key, value in regions.items():
        if not _REGION_KEY.match(key) or key not in bounds or not _valid_region(value, bounds[key]):
            return {}, f"malformed region {key[:20]!r}"
    return regions, None


def _plan(
    detectors: list[Detector], item: Item, out: Path, opts: Options, note, inputs: Collection[Path] = ()
) -> _Input | Reused:
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
    if paths["mitotic-figures.json"].exists():
        doc = _read_finished(paths["mitotic-figures.json"])
        prov = doc.get("provenance") if doc is not None else None
        other = prov.get("input") if isinstance(prov, dict) else None
        if isinstance(other, str) and other != wanted["input"]:
            if not opts.force:
                raise MitodetError(
                    path,
                    f"{out / item.stem}.* hold the results of another input of that name ({printable(other)}): "
                    "give another --out, or --force to replace them",
                )
            inp_replaces = other
        else:
            inp_replaces = None
    else:
        inp_replaces = None
    finished = None  # a finished output whose summary alone is outdated: its doc
    if paths["mitotic-figures.json"].exists() and not opts.force:
        doc = _read_finished(paths["mitotic-figures.json"])
        why = "unreadable" if doc is None else provenance_mismatch(doc.get("provenance"), wanted)
        if why is None and opts.overlay and not paths["overlay.png"].exists():
            why = "no overlay yet"
        if why is None and opts.report and not paths["report.html"].exists():
            why = "no report yet"
        if why is None and doc is not None:
            summary = doc.get("summary")
            return Reused(summary if isinstance(summary, dict) else None)
        if doc is not None and why is not None and why.startswith("outdated"):
            finished = doc
        else:
            finished = None
        if finished is None and note:
            note(f"{paths['mitotic-figures.json']}: {why}; recomputing")
    model_mpp = detectors[0].mpp
    base = Job(key=item.name, path=str(path), page=item.page, mpp=opts.mpp, threshold=opts.threshold, full=opts.full)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsamplingWarning)  # reported once through note() below
        if _is_slide(path):
            if item.page is not None:
                raise MitodetError(path, "a multi-page TIFF stack of pages this large is not supported; split it")
            with open_slide(path, opts.mpp) as s:
                spacing = s.mpp
                size = s.dimensions
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
            inp = _Input(item, path, item.stem, True, spacing, size, tissue, [])
            inp.thumb = thumb
            rf = max(d.model.receptive_field for d in detectors)
            margin = 2 * (rf // 2 + 2 * int(np.ceil(match_radius_px(model_mpp))) // 2 + 2)  # even, > rf/2 + min dist
            need = tissue.need() if tissue is not None else None
            inp.partial = out / f"{item.stem}.partial.json"
            n_regions = math.ceil(W / REGION) * math.ceil(H / REGION)
            if n_regions > MAX_REGIONS:
                raise MitodetError(
                    path, f"{W} x {H} px at {model_mpp:g} µm/px is {n_regions} regions: is the spacing right? (--mpp)"
                )
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
            inp.keys = [_region_key(x, y) for x, y, _, _ in regions]
            f = model_mpp / spacing  # level-0 px per model px
            bounds = {
                _region_key(x, y): ((x - 0.5) * f - 0.5, (y - 0.5) * f - 0.5, (x + w + 0.5) * f, (y + h + 0.5) * f)
                for x, y, w, h in regions
            }
            if opts.force:
                inp.partial.unlink(missing_ok=True)
            else:
                inp.state, why = _read_partial(inp.partial, wanted, bounds)
                if why is not None and note:
                    note(f"{inp.partial}: {why}; starting this slide again")
            for x, y, w, h in regions:
                if _region_key(x, y) not in inp.state:
                    inp.jobs.append(replace(base, region=(x, y, w, h), margin=margin))
        else:
            image, stored = read_image(path, opts.mpp, page=item.page or 0)
            if stored is None:
                raise MitodetError(path, "no pixel spacing stored in the file; pass --mpp")
            tissue = image_tissue(image, stored) if opts.tissue else None
            inp = _Input(item, path, item.stem, False, stored, (image.shape[1], image.shape[0]), tissue, [])
            inp.image = image
            inp.jobs.append(replace(base, spacing=stored, pixels=image))
    inp.provenance = wanted
    inp.replaces = inp_replaces
    if finished is not None:
        inp.stored = stored_detections(finished, finished.get("provenance"), wanted, inp.spacing)
        if inp.stored is not None:  # the networks' work stands; only the summary is made again
            inp.jobs, inp.keys = [], []
            mpx = finished.get("summary", {}).get("network_mpx") if isinstance(finished.get("summary"), dict) else 0
            inp.stored_network_px = int(round(_count(mpx) * 1e6))
            if note:
                note(f"{paths['mitotic-figures.json']}: only the summary changed; summarising its detections again")
        elif note:
            why = provenance_mismatch(finished.get("provenance"), wanted)
            note(f"{paths['mitotic-figures.json']}: {why}; recomputing")
    text = upsampling_note(path.name, inp.spacing, model_mpp)
    if text and note:
        note(text)
    return inp


def _windows(inp: _Input, dets: list[Detection], mpp: float, side: int) -> list[np.ndarray]:
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


def _crops(inp: _Input, dets: list[Detection], model_mpp: float) -> list[Crop]:
    """Gallery crops of ``dets`` at the model spacing, the matching radius ringed."""
    side = int(round(CROP_UM / model_mpp))
    radius = match_radius_px(model_mpp)
    return [Crop(ring_crop(w, radius), d) for w, d in zip(_windows(inp, dets, model_mpp, side), dets, strict=True)]


def classify_atypical(inp: _Input, dets: list[Detection], clf: AtypicalClassifier) -> list[Detection]:
    """``dets`` with P(atypical) set on each mitotic figure (candidates below the threshold: None)."""
    mfs = [d for d in dets if d.is_mitosis]
    p = iter(clf.probabilities(np.stack(_windows(inp, mfs, clf.mpp, clf.input))) if mfs else [])
    return [replace(d, atypical=float(next(p))) if d.is_mitosis else d for d in dets]


def _thumbnail(inp: _Input, max_side: int) -> tuple[np.ndarray, float]:
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


def _stored_precision(d: Detection, size: tuple[int, int]) -> Detection:
    """``d`` with its probabilities at the 6 decimals that the MIDOG JSON stores, and its centre
    on the image's pixel centres (a map position at the edge can fall half a pixel outside,
    which no point reader takes back)."""
    atyp = None if d.atypical is None else round(d.atypical, 6)
    x, y = min(max(d.x, 0.0), size[0] - 1.0), min(max(d.y, 0.0), size[1] - 1.0)
    return replace(d, x=x, y=y, probability=round(d.probability, 6), atypical=atyp)


def _finish(
    inp: _Input, dets: list[Detection], network_px: int, detectors: list[Detector], out: Path, opts: Options
) -> Summary:
    """Write every output of a finished input; the MIDOG JSON last, as the 'finished' marker."""
    paths = outputs_for(out, inp.stem)
    models = " + ".join(d.name for d in detectors)
    t = [opts.threshold if opts.threshold is not None else d.threshold for d in detectors]
    if opts.atypical is not None and inp.stored is None:  # re-summarised: P(atypical) is stored
        dets = classify_atypical(inp, dets, opts.atypical)
    dets = [_stored_precision(d, inp.size) for d in dets]  # every output (and a re-summarising) sees the same numbers
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
        thumb, scale = _thumbnail(inp, REPORT_SIDE if not opts.overlay or inp.image is not None else 4096)
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


def _count(value: Any) -> float:
    """A stored number of a summary (0 when missing or not a number)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


@dataclass
class Totals:
    """What a run did, for its last line."""

    inputs: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    mitotic_figures: int = 0
    tissue_mm2: float = 0.0
    megapixels: float = 0.0  # area of the processed inputs in megapixels of the model spacing
    network_mpx: float = 0.0
    seconds: float = 0.0
    summary_error: MitodetError | None = None  # summary.csv could not be written (disk full ...)


def run_inputs(
    detectors,
    files,
    out: Path,
    mpp=None,
    threshold=None,
    overlay=False,
    force=False,
    on_file=None,
    on_result=None,
    on_tiles=None,
    note=None,
    *,
    options: Options | None = None,
    executor: Executor | None = None,
    on_regions: Callable[[Path, int, int], None] | None = None,
    on_totals: Callable[[Totals], None] | None = None,
) -> int:
    """Detect in every file; a failing file is reported through ``on_result(path, None, error)``
    and skipped. ``on_result(path, n, None)`` gets the mitotic-figure count (None: skipped as done).
    ``on_regions(path, done, total)`` follows a slide's regions (and an image as one region).
    ``options`` (default: from the keyword arguments before it) says what to do with each input;
    ``executor`` runs the jobs (default: here, one after the other; see :mod:`mitodet.infer.cluster`).
    Writes ``<out>/summary.csv``; ``on_totals`` gets the run's :class:`Totals`. Returns the
    number of files that failed."""
    opts = options or Options(mpp=mpp, threshold=threshold, overlay=overlay, force=force)
    out = check_output_dir(out, "--out", create=True)
    remove_stale_temps(out)  # what a killed run left (never a running writer's file)
    ex = executor or LocalExecutor(detectors, on_tiles)
    items = plan_items([Path(f) for f in files])
    given = {Path(f).resolve() for f in files}
    totals = Totals(inputs=len(items))
    t0 = time.perf_counter()
    inputs: dict[str, _Input] = {}
    rows: dict[str, dict] = {}
    replaced: set[str] = set()

    def fail(path: Path, err: Exception) -> None:
        if not isinstance(err, MitodetError):
            err = MitodetError(path, f"{type(err).__name__}: {err}")
        elif err.source is None:  # name the file the problem is in
            err = MitodetError(path, err.problem)
        totals.failed += 1
        rows[str(path)] = {"input": str(path), "status": "failed", "error": err.problem}
        if on_result:
            on_result(path, None, err)

    def finish(inp: _Input, dets: list[Detection], network_px: int) -> None:
        try:
            s = _finish(inp, dets, network_px, detectors, out, opts)
        except (MitodetError, OSError, ValueError) as err:
            fail(Path(inp.item.name), err)
            return
        rows[inp.item.name] = {**s.row(), "status": "done"}
        if inp.replaces:
            replaced.add(inp.replaces)
        totals.done += 1
        totals.mitotic_figures += s.mitotic_figures
        totals.tissue_mm2 += s.tissue_mm2
        if inp.stored is None:  # re-summarised inputs ran no network
            totals.megapixels += inp.size[0] * inp.size[1] / 1e6 * (inp.spacing / detectors[0].mpp) ** 2
        totals.network_mpx += network_px / 1e6
        inp.image = None
        if on_result:
            on_result(Path(inp.item.name), s.mitotic_figures, None)

    def finish_slide(inp: _Input) -> None:
        dets = [Detection(*v) for k in inp.keys for v in inp.state[k]["dets"]]  # region order: deterministic
        dets.sort(key=lambda d: -d.probability)
        finish(inp, dets, sum(inp.state[k]["network_px"] for k in inp.keys))

    def jobs() -> Iterator[Job]:
        for item in items:
            shown = Path(item.name)
            if on_file:
                on_file(shown)
            try:
                inp = _plan(detectors, item, out, opts, note, given)
            except (MitodetError, OSError, ValueError) as err:
                fail(shown, err)
                continue
            if isinstance(inp, Reused):  # its JSON was read once, by _plan
                totals.skipped += 1
                if inp.summary is not None:  # its stored numbers, in the row and in the totals
                    rows[item.name] = {**{k: inp.summary.get(k, "") for k in SUMMARY_FIELDS}, "status": "skipped"}
                    totals.mitotic_figures += int(_count(inp.summary.get("mitotic_figures")))
                    totals.tissue_mm2 += _count(inp.summary.get("tissue_mm2"))
                if on_result:
                    on_result(shown, None, None)
                continue
            inputs[item.name] = inp
            if on_regions:
                on_regions(shown, len(inp.keys) - len(inp.jobs) if inp.slide else 0, len(inp.keys) if inp.slide else 1)
            if inp.stored is not None:  # re-summarised from its finished outputs
                finish(inp, inp.stored, inp.stored_network_px)
                continue
            if not inp.jobs:  # a slide whose regions were all done before (resumed), or without tissue
                finish_slide(inp)
                continue
            yield from inp.jobs

    def tissue_of(job: Job) -> TissueMask | None:
        return inputs[job.key].tissue

    for job, result, error in ex.run(jobs(), tissue_of):
        inp = inputs[job.key]
        if inp.failed:
            continue
        if error is not None or result is None:
            inp.failed = True
            fail(Path(inp.item.name), error or MitodetError(inp.path, "no result"))
            continue
        if not inp.slide:
            if on_regions:
                on_regions(Path(inp.item.name), 1, 1)
            finish(inp, [Detection(*v) for v in result.dets], result.network_px)
            continue
        assert job.region is not None and inp.partial is not None
        inp.state[_region_key(*job.region[:2])] = {"dets": result.dets, "network_px": result.network_px}
        out.mkdir(parents=True, exist_ok=True)
        doc = {"format": PARTIAL_FORMAT, "provenance": inp.provenance, "regions": inp.state}
        write_text(inp.partial, json.dumps(doc))
        done = sum(k in inp.state for k in inp.keys)
        if on_regions:
            on_regions(Path(inp.item.name), done, len(inp.keys))
        if done == len(inp.keys):
            finish_slide(inp)
    ordered = [r for it in items if (r := rows.get(it.name) or rows.get(str(Path(it.name)))) is not None]
    if ordered:
        try:
            write_summary(out, ordered, replaced)
        except MitodetError as err:  # the outputs written stay; the last line still comes
            totals.summary_error = err
    totals.seconds = time.perf_counter() - t0
    if on_totals:
        on_totals(totals)
    return totals.failed


def run_grand_challenge(detectors, gc_input: Path, gc_output: Path, mpp=None, threshold=None) -> int:
    """Container mode: the one image under ``gc_input/images/`` -> ``gc_output/mitotic-figures.json``."""
    files = sorted(p for p in (Path(gc_input) / "images").rglob("*") if p.suffix.lower() in {".tif", ".tiff"})
    if len(files) != 1:
        raise MitodetError(Path(gc_input) / "images", f"expected exactly one TIFF, found {len(files)}")
    pages = tiff_stack_pages(files[0])
    if pages > 1:  # the container answers for one image: a stack's other pages would be dropped
        raise MitodetError(files[0], f"is a stack of {pages} images; the grand-challenge mode takes one image")
    image, spacing = read_image(files[0], mpp)
    if spacing is None:
        raise MitodetError(files[0], "no pixel spacing in the TIFF tags; pass --mpp")
    dets = detect_image(detectors, image, spacing, threshold)
    write_text(Path(gc_output) / "mitotic-figures.json", json.dumps(midog_points(dets, spacing), indent=1) + "\n")
    return count_mitoses(dets)
