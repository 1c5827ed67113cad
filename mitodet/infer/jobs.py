"""The work of a run: a job (a whole image, or one region of a slide), its result in input
pixels, the executor that runs jobs here, and the state of one input while its jobs run."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mitodet.errors import MitodetError
from mitodet.infer.detector import Detector
from mitodet.infer.ensemble import detect_image
from mitodet.infer.inputs import Item
from mitodet.infer.tissue import TissueMask
from mitodet.io.image import read_image
from mitodet.io.slide import Slide, UpsamplingWarning, open_slide
from mitodet.schema import Detection


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


@dataclass
class Input:
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
