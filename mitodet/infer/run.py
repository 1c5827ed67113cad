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
from dataclasses import dataclass
from pathlib import Path

from mitodet.errors import MitodetError
from mitodet.infer.detector import Detector
from mitodet.infer.ensemble import detect_image
from mitodet.infer.inputs import Options, plan_items
from mitodet.infer.jobs import Executor, Input, Job, LocalExecutor
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
    given = {Path(f).resolve() for f in files}
    totals = Totals(inputs=len(items))
    t0 = time.perf_counter()
    inputs: dict[str, Input] = {}
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

    def finish(inp: Input, dets: list[Detection], network_px: int) -> None:
        try:
            s = write_outputs(inp, dets, network_px, detectors, out, opts)
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

    def finish_slide(inp: Input) -> None:
        dets = [Detection(*v) for k in inp.keys for v in inp.state[k]["dets"]]  # region order: deterministic
        dets.sort(key=lambda d: -d.probability)
        finish(inp, dets, sum(inp.state[k]["network_px"] for k in inp.keys))

    def jobs() -> Iterator[Job]:
        for item in items:
            shown = Path(item.name)
            if on_file:
                on_file(shown)
            try:
                inp = plan_input(detectors, item, out, opts, note, given)
            except (MitodetError, OSError, ValueError) as err:
                fail(shown, err)
                continue
            if isinstance(inp, Reused):  # its JSON was read once, by plan_input
                totals.skipped += 1
                if inp.summary is not None:  # its stored numbers, in the row and in the totals
                    rows[item.name] = {**{k: inp.summary.get(k, "") for k in SUMMARY_FIELDS}, "status": "skipped"}
                    totals.mitotic_figures += int(stored_number(inp.summary.get("mitotic_figures")))
                    totals.tissue_mm2 += stored_number(inp.summary.get("tissue_mm2"))
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
        inp.state[region_key(*job.region[:2])] = {"dets": result.dets, "network_px": result.network_px}
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
    write_midog_json(Path(gc_output) / "mitotic-figures.json", dets, spacing)
    return count_mitoses(dets)
