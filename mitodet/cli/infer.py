"""``mitodet detect``: dense detection on images, folders and whole slides."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from mitodet.cli import options
from mitodet.cli.ui import err_console, out_console, progress
from mitodet.errors import MitodetError, printable
from mitodet.resources import DEFAULT_MODELS, WEIGHTS
from mitodet.schema import significant
from mitodet.settings import DEFAULT_BATCH, DEFAULT_HOTSPOT_MM2, DEFAULT_TILE, MIN_DENSITY_MM2

# Options that take an optional value: bare ``--ray`` means ``--ray=local`` (see normalize_argv).
BARE_VALUES = {"--ray": "local"}


def normalize_argv(argv: list[str]) -> list[str]:
    """``--ray`` given without a value (last, before another option, or before an existing file)
    becomes ``--ray=local``: typer options cannot have an optional value of their own."""
    out = list(argv)
    for k, a in enumerate(out):
        if a in BARE_VALUES:
            nxt = out[k + 1] if k + 1 < len(out) else None
            if nxt is None or nxt.startswith("-") or Path(nxt).exists():
                out[k] = f"{a}={BARE_VALUES[a]}"
    return out


def detect_cmd(
    inputs: list[Path] = typer.Argument(
        None,
        help="Images (TIFF/PNG/JPEG), folders of them, or whole slides (SVS/NDPI/pyramidal TIFF).",
        callback=options.inputs,
    ),
    out: Path = typer.Option(Path("detections"), "--out", "-o", metavar="DIR", help="Output folder."),
    model: list[Path] = typer.Option(
        None,
        "--model",
        "-m",
        metavar="FILE",
        help="Checkpoint; give two for the agreement ensemble (default: the bundled CA-RGB + CA-OD weights).",
    ),
    mpp: float = typer.Option(
        None,
        "--mpp",
        help="Pixel spacing (µm/px) of the inputs, 0.05-20; overrides the stored one.",
        callback=options.mpp,
    ),
    threshold: float = typer.Option(
        None,
        "--threshold",
        help="Decision threshold, 0-1 (default: the calibrated one, chosen on whole fields; images cut "
        "around mitoses want a lower one).",
        callback=options.threshold,
    ),
    overlay: bool = typer.Option(
        False, "--overlay/--no-overlay", help="Also write <name>.overlay.png with detections circled."
    ),
    force: bool = typer.Option(False, "--force/--no-force", help="Redo inputs whose outputs already exist."),
    positives_only: bool = typer.Option(
        False,
        "--positives-only/--all-candidates",
        help="List only mitotic figures in the JSON, CSV and GeoJSON (not the candidates).",
    ),
    hotspot_mm2: float = typer.Option(
        DEFAULT_HOTSPOT_MM2,
        "--hotspot-mm2",
        help="Area of the hotspot circle, mm² (2 mm² = 10 high-power fields).",
        callback=options.number(0, 100, lo_open=True),
    ),
    tissue: bool = typer.Option(
        True, "--tissue/--no-tissue", help="Find the tissue and run the networks only there (counts per mm² of it)."
    ),
    report: bool = typer.Option(True, "--report/--no-report", help="Write <name>.report.html."),
    atypical: bool = typer.Option(
        True,
        "--atypical/--no-atypical",
        help="Give every mitotic figure P(atypical) and count the atypical ones (the bundled classifier).",
    ),
    atypical_model: Path = typer.Option(
        None,
        "--atypical-model",
        metavar="FILE",
        help="Atypical-vs-normal classifier checkpoint (default: the bundled one).",
    ),
    atypical_threshold: float = typer.Option(
        None,
        "--atypical-threshold",
        help="P(atypical) from which a figure counts as atypical (default: the calibrated one).",
        callback=options.threshold,
    ),
    full_ensemble: bool = typer.Option(
        False,
        "--full-ensemble/--cascade",
        help="Run the second model everywhere, not only around the first one's candidates: the same mitotic "
        "figures, but every candidate of both models listed (for AP/FROC).",
    ),
    ray: str = typer.Option(
        None,
        "--ray",
        metavar="[ADDRESS]",
        help="Run on Ray: --ray alone starts a local Ray runtime; --ray ADDRESS joins a cluster "
        "(auto, or ray://HEAD:10001). Inputs must be readable at the same path on every node.",
    ),
    ray_cpus: int = typer.Option(
        None, "--ray-cpus", help="CPUs of the local Ray runtime (default: all).", callback=options.positive_int
    ),
    device: str = typer.Option(
        "cpu", "--device", metavar="DEVICE", help="Device: cpu, cuda or cuda:N.", callback=options.device
    ),  # fmt: skip
    threads: int = typer.Option(
        None, "--threads", help="CPU threads, >= 1 (per Ray task: default 1).", callback=options.threads
    ),
    backend: str = typer.Option(
        "auto",
        "--backend",
        metavar="NAME",
        help="Backend: auto (ONNX Runtime on the CPU when installed), onnx, or torch (folded, channels-last).",
    ),
    tile: int = typer.Option(
        DEFAULT_TILE, "--tile", help="Tile side in pixels, 128-8192 (bounds memory).", callback=options.tile
    ),
    batch_size: int = typer.Option(
        DEFAULT_BATCH, "--batch-size", help="Tiles per forward pass, 1-256.", callback=options.batch_size
    ),
    grand_challenge: bool = typer.Option(
        False,
        "--grand-challenge/--no-grand-challenge",
        help="Container mode: read <gc-input>/images/**/*.tif[f], write <gc-output>/mitotic-figures.json.",
    ),
    gc_input: Path = typer.Option(Path("/input"), "--gc-input", metavar="DIR", help="Grand-challenge input folder."),
    gc_output: Path = typer.Option(
        Path("/output"), "--gc-output", metavar="DIR", help="Grand-challenge output folder."
    ),  # fmt: skip
    quiet: bool = typer.Option(
        False, "--quiet/--no-quiet", "-q", help="No progress bar (results, notes and errors still show)."
    ),
) -> None:
    """Detect mitotic figures: dense probability map, local maxima, calibrated threshold (two models:
    agreement ensemble). Writes per image a MIDOG JSON (mm), CSV, QuPath GeoJSON, tissue mask, HTML
    report and optional overlay, and one row per input to <out>/summary.csv.

    \fLong because of its option declarations; the work is in mitodet.infer.run."""
    from mitodet.infer.inputs import Options, collect_inputs
    from mitodet.infer.run import load_detectors, run_grand_challenge, run_inputs

    paths = [Path(p) for p in (model or [])] or DEFAULT_MODELS
    if not model and not all(p.is_file() for p in paths):
        raise MitodetError(
            WEIGHTS, "no bundled default weights (default-ca-rgb.pt, default-ca-od.pt); pass --model CHECKPOINT"
        )
    kwargs = dict(device=device, tile=tile, batch_size=batch_size, backend=backend)
    detectors = load_detectors(paths, threads=threads, **kwargs)
    if grand_challenge:
        n = run_grand_challenge(detectors, gc_input, gc_output, mpp=mpp, threshold=threshold)
        out_console.print(f"wrote {gc_output / 'mitotic-figures.json'} ({n} mitotic figures)")
        return
    if not inputs:
        raise MitodetError(None, "no INPUT given (or pass --grand-challenge)")
    files = collect_inputs(inputs)
    classifier = None
    if atypical:
        from mitodet.classify.predict import AtypicalClassifier

        classifier = AtypicalClassifier.from_checkpoint(atypical_model)
        if atypical_threshold is not None:
            classifier.threshold = atypical_threshold
    opts = Options(
        mpp=mpp,
        threshold=threshold,
        overlay=overlay,
        force=force,
        positives_only=positives_only,
        full=full_ensemble,
        tissue=tissue,
        hotspot_mm2=hotspot_mm2,
        report=report,
        atypical=classifier,
    )
    executor = None
    if ray:
        from mitodet.infer.cluster import RayExecutor

        gpus = 1 if device.startswith("cuda") else 0
        address = None if ray == "local" else ray
        executor = RayExecutor(paths, kwargs, address, ray_cpus, threads=threads or 1, gpus=gpus)
    totals = []
    try:
        with progress(disable=quiet) as bar:
            task = bar.add_task("inputs", total=len(files))
            per_input: dict[Path, int] = {}

            def on_regions(path: Path, done: int, total: int) -> None:
                if path not in per_input:  # regions done before (a resumed run) do not count for the ETA
                    name = escape(printable(path.name)[:36])
                    per_input[path] = bar.add_task(f"  {name} regions", total=total, completed=done)
                bar.update(per_input[path], completed=done, total=total)

            def on_result(path: Path, n: int | None, err: Exception | None) -> None:
                if err is not None:
                    err_console.print(f"[red]error[/]: {escape(str(err))}", highlight=False)
                else:
                    msg = "skipped (done; --force to redo)" if n is None else f"{n} mitotic figure(s)"
                    out_console.print(f"{printable(str(path))}: {msg}", highlight=False, markup=False)
                if path in per_input:
                    bar.update(per_input.pop(path), visible=False)
                bar.advance(task)

            sub = bar.add_task("  tiles", total=None, visible=False)
            failed = run_inputs(
                detectors,
                files,
                out,
                on_result=on_result,
                on_file=lambda path: bar.update(sub, completed=0, total=None, visible=False),
                on_tiles=lambda i, t: bar.update(sub, completed=i, total=t, visible=i < t),
                note=lambda text: err_console.print(f"[yellow]note[/]: {escape(printable(text))}", highlight=False),
                options=opts,
                executor=executor,
                on_regions=on_regions,
                on_totals=totals.append,
            )
    finally:
        if executor is not None:
            executor.close()
    t = totals[0]
    table = out / "summary.csv"  # not written when no input was done or skipped
    if t.summary_error is not None:
        summary = "; summary.csv not written"
    else:
        summary = f"; summary: {printable(str(table))}" if table.is_file() else "; no summary (no input done)"
    rate = f", {t.megapixels / t.seconds:.2f} Mpx/s" if t.seconds > 0 and t.megapixels > 0 else ""
    density = f" ({t.mitotic_figures / t.tissue_mm2:.2f} per mm²)" if t.tissue_mm2 >= MIN_DENSITY_MM2 else ""
    out_console.print(
        f"{t.inputs} input(s): {t.done} done, {t.skipped} skipped, {t.failed} failed; "
        f"{t.mitotic_figures} mitotic figure(s) in {_mm2(t.tissue_mm2)} mm² of tissue{density}; "
        f"{t.megapixels:.1f} Mpx in {t.seconds:.1f} s{rate}{summary}",
        highlight=False,
        markup=False,
    )
    if t.summary_error is not None:
        err_console.print(f"[red]error[/]: {escape(str(t.summary_error))}", highlight=False)
    if failed:
        err_console.print(f"[red]{failed} of {t.inputs} input(s) failed[/]")
    if failed or t.summary_error is not None:
        raise typer.Exit(2)  # bad input, as for every other command


def _mm2(area: float) -> str:
    """An area in mm² to three significant digits (a patch: 0.00410; never 0.00)."""
    return significant(area)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("detect")(detect_cmd)
