"""``mitodet detect``: dense detection on images, folders and whole slides."""

from __future__ import annotations

from pathlib import Path

import typer

from mitodet.cli import options
from mitodet.cli.ui import err_console, out_console, progress
from mitodet.errors import MitodetError

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_MODELS = [WEIGHTS / "default-ca-rgb.pt", WEIGHTS / "default-ca-od.pt"]


def detect_cmd(
    inputs: list[Path] = typer.Argument(
        None,
        help="Images (TIFF/PNG/JPEG), folders of them, or whole slides (SVS/NDPI/pyramidal TIFF).",
        callback=options.inputs,
    ),
    out: Path = typer.Option(Path("detections"), "--out", "-o", help="Output folder."),
    model: list[Path] = typer.Option(
        None,
        "--model",
        "-m",
        help="Checkpoint; give two for the agreement ensemble (default: the bundled CA-RGB + CA-OD weights).",
    ),
    mpp: float = typer.Option(
        None,
        "--mpp",
        help="Pixel spacing (µm/px) of the inputs, 0.05-20; overrides the stored one.",
        callback=options.mpp,
    ),
    threshold: float = typer.Option(
        None, "--threshold", help="Decision threshold, 0-1 (default: the calibrated one).", callback=options.threshold
    ),
    overlay: bool = typer.Option(
        False, "--overlay/--no-overlay", help="Also write <name>.overlay.png with detections circled."
    ),
    force: bool = typer.Option(False, "--force/--no-force", help="Redo inputs whose outputs already exist."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N.", callback=options.device),
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch (>= 1).", callback=options.threads),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnx (ONNX Runtime, CPU, faster)."),
    tile: int = typer.Option(
        1024, "--tile", help="Tile side in pixels, 128-8192 (bounds memory).", callback=options.tile
    ),
    batch_size: int = typer.Option(
        4, "--batch-size", help="Tiles per forward pass, 1-256.", callback=options.batch_size
    ),
    grand_challenge: bool = typer.Option(
        False,
        "--grand-challenge/--no-grand-challenge",
        help="Container mode: read <gc-input>/images/**/*.tif[f], write <gc-output>/mitotic-figures.json.",
    ),
    gc_input: Path = typer.Option(Path("/input"), "--gc-input", help="Grand-challenge input folder."),
    gc_output: Path = typer.Option(Path("/output"), "--gc-output", help="Grand-challenge output folder."),
) -> None:
    """Detect mitotic figures: dense probability map, local maxima, calibrated threshold (two models:
    agreement ensemble). Writes per image a MIDOG JSON (mm), CSV, QuPath GeoJSON and optional overlay."""
    from mitodet.infer.run import collect_inputs, load_detectors, run_grand_challenge, run_inputs

    paths = [Path(p) for p in (model or [])] or DEFAULT_MODELS
    if not model and not all(p.is_file() for p in paths):
        raise MitodetError(
            WEIGHTS, "no bundled default weights (default-ca-rgb.pt, default-ca-od.pt); pass --model CHECKPOINT"
        )
    detectors = load_detectors(paths, device=device, threads=threads, tile=tile, batch_size=batch_size, backend=backend)
    if grand_challenge:
        n = run_grand_challenge(detectors, gc_input, gc_output, mpp=mpp, threshold=threshold)
        out_console.print(f"wrote {gc_output / 'mitotic-figures.json'} ({n} mitotic figures)")
        return
    if not inputs:
        raise MitodetError(None, "no INPUT given (or pass --grand-challenge)")
    files = collect_inputs(inputs)
    with progress() as bar:
        task = bar.add_task("images", total=len(files))
        sub = bar.add_task("tiles", total=None, visible=False)

        def on_file(path: Path) -> None:
            bar.update(task, description=path.name[:40])
            bar.update(sub, completed=0, total=None, visible=True)

        def on_result(path: Path, n: int | None, err: Exception | None) -> None:
            if err is not None:
                err_console.print(f"[red]error[/]: {err}", highlight=False)
            else:
                msg = "skipped (done; --force to redo)" if n is None else f"{n} mitotic figure(s)"
                out_console.print(f"{path}: {msg}", highlight=False)
            bar.advance(task)

        failed = run_inputs(
            detectors,
            files,
            out,
            mpp=mpp,
            threshold=threshold,
            overlay=overlay,
            force=force,
            on_file=on_file,
            on_result=on_result,
            on_tiles=lambda i, t: bar.update(sub, completed=i, total=t),
            note=lambda text: err_console.print(f"[yellow]note[/]: {text}", highlight=False),
        )
        bar.update(sub, visible=False)
    if failed:
        err_console.print(f"[red]{failed} of {len(files)} input(s) failed[/]")
        raise typer.Exit(2)  # bad input, as for every other command


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("detect")(detect_cmd)
