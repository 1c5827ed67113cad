"""Running detection over files: images, folders, whole slides (by regions, resumable), in this
process or on a Ray cluster (:mod:`mitodet.infer.cluster`). One pipeline, top to bottom:

1. :mod:`~mitodet.infer.inputs`: the files, one item per file or stack page, unique stems;
2. :mod:`~mitodet.infer.plan`: per input its tissue mask and its jobs (the whole image, or the
   slide regions that hold tissue), or the finished outputs it reuses
   (:mod:`~mitodet.infer.provenance` decides what still holds);
3. :mod:`~mitodet.infer.jobs`: an executor runs the jobs; a slide's finished regions are kept in
   ``<stem>.partial.json`` (an interrupted run resumes there);
4. :mod:`~mitodet.infer.writing`: once an input is complete, its outputs and its summary row.

:func:`run_inputs` (here) only wires these. A job gives the same detections wherever it runs
(map values do not depend on the process, thread count or tiling: :mod:`mitodet.infer.dense`),
and results are assembled in region order, so a cluster run writes the same bytes as a run in
one process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mitodet.errors import MitodetError
from mitodet.infer.detector import Detector
from mitodet.infer.ensemble import detect_image
from mitodet.infer.inputs import Item, Options, plan_items
from mitodet.infer.jobs import Executor, Input, Job, JobResult, LocalExecutor
from mitodet.infer.outputs import write_midog_json
from mitodet.infer.plan import plan_input
from mitodet.infer.provenance import PARTIAL_FORMAT, Reused, region_key, stored_number
from mitodet.infer.summary import SUMMARY_FIELDS
from mitodet.infer.tissue import TissueMask
from mitodet.infer.writing import write_outputs, write_summary
from mitodet.io.atomic import remove_stale_temps, write_text
from mitodet.io.files import check_output_dir
from mitodet.io.image import read_image, tiff_stack_pages
from mitodet.schema import Detection, count_mitoses

__all__ = ["Options", "Totals", "load_detectors", "run_grand_challenge", "run_inputs"]


def load_detectors(paths: list[Path], **kwargs) -> list[Detector]:
    """The detectors of one or two checkpoints (``backend`` default "auto": ONNX Runtime on the CPU)."""
    kwargs.setdefault("backend", "auto")
    if len(paths) > 2:
        raise MitodetError(None, f"give one model, or two for the ensemble (got {len(paths)})")
    return [Detector.from_checkpoint(p, **kwargs) for p in paths]


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
    t0 = time.perf_counter()
    r = _Run(detectors, out, opts, Totals(inputs=len(items)), on_result, on_regions)
    for job, result, error in ex.run(r.jobs(items, {Path(f).resolve() for f in files}, on_file, note), r.tissue_of):
        r.take(job, result, error)
    ordered = [row for it in items if (row := r.rows.get(it.name) or r.rows.get(str(Path(it.name)))) is not None]
    if ordered:
        try:
            write_summary(out, ordered, r.replaced)
        except MitodetError as err:  # the outputs written stay; the last line still comes
            r.totals.summary_error = err
    r.totals.seconds = time.perf_counter() - t0
    if on_totals:
        on_totals(r.totals)
    return r.totals.failed


@dataclass
class _Run:
    """The state one run shares between planning, its executor's results and writing: the
    inputs in progress, the summary rows and the totals."""

    detectors: list[Detector]
    out: Path
    opts: Options
    totals: Totals
    on_result: Callable[[Path, int | None, Exception | None], None] | None = None
    on_regions: Callable[[Path, int, int], None] | None = None
    inputs: dict[str, Input] = field(default_factory=dict)
    rows: dict[str, dict] = field(default_factory=dict)
    replaced: set[str] = field(default_factory=set)

    def jobs(self, items: list[Item], given: set[Path], on_file, note) -> Iterator[Job]:
        """Plan each input in turn and yield its jobs (inputs reused or re-summarised need none)."""
        for item in items:
            shown = Path(item.name)
            if on_file:
                on_file(shown)
            try:
                inp = plan_input(self.detectors, item, self.out, self.opts, note, given)
            except (MitodetError, OSError, ValueError) as err:
                self.fail(shown, err)
                continue
            if isinstance(inp, Reused):  # its JSON was read once, by plan_input
                self.skipped(shown, item, inp)
                continue
            self.inputs[item.name] = inp
            if self.on_regions:
                done, total = (len(inp.keys) - len(inp.jobs), len(inp.keys)) if inp.slide else (0, 1)
                self.on_regions(shown, done, total)
            if inp.stored is not None:  # re-summarised from its finished outputs
                self.finish(inp, inp.stored, inp.stored_network_px)
            elif not inp.jobs:  # a slide whose regions were all done before (resumed), or without tissue
                self.finish_slide(inp)
            else:
                yield from inp.jobs

    def tissue_of(self, job: Job) -> TissueMask | None:
        return self.inputs[job.key].tissue

    def take(self, job: Job, result: JobResult | None, error: Exception | None) -> None:
        """One job's result: an image is finished; a slide's region joins its partial state."""
        inp = self.inputs[job.key]
        if inp.failed:
            return
        if error is not None or result is None:
            inp.failed = True
            self.fail(Path(inp.item.name), error or MitodetError(inp.path, "no result"))
            return
        if not inp.slide:
            if self.on_regions:
                self.on_regions(Path(inp.item.name), 1, 1)
            self.finish(inp, [Detection(*v) for v in result.dets], result.network_px)
            return
        assert job.region is not None and inp.partial is not None
        inp.state[region_key(*job.region[:2])] = {"dets": result.dets, "network_px": result.network_px}
        self.out.mkdir(parents=True, exist_ok=True)
        doc = {"format": PARTIAL_FORMAT, "provenance": inp.provenance, "regions": inp.state}
        write_text(inp.partial, json.dumps(doc))
        done = sum(k in inp.state for k in inp.keys)
        if self.on_regions:
            self.on_regions(Path(inp.item.name), done, len(inp.keys))
        if done == len(inp.keys):
            self.finish_slide(inp)

    def fail(self, path: Path, err: Exception) -> None:
        if not isinstance(err, MitodetError):
            err = MitodetError(path, f"{type(err).__name__}: {err}")
        elif err.source is None:  # name the file the problem is in
            err = MitodetError(path, err.problem)
        self.totals.failed += 1
        self.rows[str(path)] = {"input": str(path), "status": "failed", "error": err.problem}
        if self.on_result:
            self.on_result(path, None, err)

    def skipped(self, shown: Path, item: Item, reused: Reused) -> None:
        self.totals.skipped += 1
        if reused.summary is not None:  # its stored numbers, in the row and in the totals
            self.rows[item.name] = {**{k: reused.summary.get(k, "") for k in SUMMARY_FIELDS}, "status": "skipped"}
            self.totals.mitotic_figures += int(stored_number(reused.summary.get("mitotic_figures")))
            self.totals.tissue_mm2 += stored_number(reused.summary.get("tissue_mm2"))
        if self.on_result:
            self.on_result(shown, None, None)

    def finish(self, inp: Input, dets: list[Detection], network_px: int) -> None:
        try:
            s = write_outputs(inp, dets, network_px, self.detectors, self.out, self.opts)
        except (MitodetError, OSError, ValueError) as err:
            self.fail(Path(inp.item.name), err)
            return
        self.rows[inp.item.name] = {**s.row(), "status": "done"}
        if inp.replaces:
            self.replaced.add(inp.replaces)
        t = self.totals
        t.done += 1
        t.mitotic_figures += s.mitotic_figures
        t.tissue_mm2 += s.tissue_mm2
        if inp.stored is None:  # re-summarised inputs ran no network
            t.megapixels += inp.size[0] * inp.size[1] / 1e6 * (inp.spacing / self.detectors[0].mpp) ** 2
        t.network_mpx += network_px / 1e6
        inp.image = None
        if self.on_result:
            self.on_result(Path(inp.item.name), s.mitotic_figures, None)

    def finish_slide(self, inp: Input) -> None:
        dets = [Detection(*v) for k in inp.keys for v in inp.state[k]["dets"]]  # region order: deterministic
        dets.sort(key=lambda d: -d.probability)
        self.finish(inp, dets, sum(inp.state[k]["network_px"] for k in inp.keys))


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
    write_midog_json(Path(gc_output) / "mitotic-figures.json", dets, spacing)
    return count_mitoses(dets)
