"""``mitodet detect`` and ``mitodet calibrate``: dense detection and threshold calibration."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mitodet.errors import MitodetError

console = Console(stderr=True)
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_MODELS = [WEIGHTS / "default-ca-rgb.pt", WEIGHTS / "default-ca-od.pt"]


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def detect_cmd(
    inputs: list[Path] = typer.Argument(None, help="Images (TIFF/PNG/JPEG), folders of them, or whole slides (SVS/NDPI/pyramidal TIFF)."),
    out: Path = typer.Option(Path("detections"), "--out", "-o", help="Output folder."),
    model: list[Path] = typer.Option(None, "--model", "-m", help="Checkpoint; give two for the agreement ensemble "
                                     "(default: the bundled CA-RGB + CA-OD weights)."),
    mpp: float = typer.Option(None, "--mpp", help="Pixel spacing (µm/px) of the inputs; overrides the stored one."),
    threshold: float = typer.Option(None, "--threshold", help="Decision threshold (default: the calibrated one)."),
    overlay: bool = typer.Option(False, "--overlay", help="Also write <name>.overlay.png with detections circled."),
    force: bool = typer.Option(False, "--force", help="Redo inputs whose outputs already exist."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch."),
    backend: str = typer.Option("torch", "--backend", help="torch, or onnx (ONNX Runtime, CPU, faster)."),
    tile: int = typer.Option(1024, "--tile", help="Tile side in pixels (bounds memory)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Tiles per forward pass."),
    grand_challenge: bool = typer.Option(False, "--grand-challenge", help="Container mode: read "
                                         "<gc-input>/images/**/*.tif[f], write <gc-output>/mitotic-figures.json."),
    gc_input: Path = typer.Option(Path("/input"), "--gc-input", help="Grand-challenge input folder."),
    gc_output: Path = typer.Option(Path("/output"), "--gc-output", help="Grand-challenge output folder."),
) -> None:
    """Detect mitotic figures: dense probability map, local maxima, calibrated threshold (two models:
    agreement ensemble). Writes per image a MIDOG JSON (mm), CSV, QuPath GeoJSON and optional overlay."""
    from mitodet.infer.run import collect_inputs, load_detectors, run_grand_challenge, run_inputs

    paths = [Path(p) for p in (model or [])] or DEFAULT_MODELS
    if not model and not all(p.is_file() for p in paths):
        raise MitodetError(WEIGHTS, "no bundled default weights (default-ca-rgb.pt, default-ca-od.pt); pass --model CHECKPOINT")
    detectors = load_detectors(paths, device=device, threads=threads, tile=tile, batch_size=batch_size,
                               backend=backend)
    if grand_challenge:
        n = run_grand_challenge(detectors, gc_input, gc_output, mpp=mpp, threshold=threshold)
        console.print(f"wrote {gc_output / 'mitotic-figures.json'} ({n} mitotic figures)")
        return
    if not inputs:
        raise MitodetError(None, "no INPUT given (or pass --grand-challenge)")
    files = collect_inputs(inputs)
    failed = run_inputs(detectors, files, out, mpp=mpp, threshold=threshold, overlay=overlay, force=force,
                        console=console, progress=_progress())
    if failed:
        console.print(f"[red]{failed} of {len(files)} input(s) failed[/]")
        raise typer.Exit(2)  # bad input, as for every other command


def calibrate_cmd(
    run: Path = typer.Argument(..., help="Training run folder (runs/NAME) with best.pt and its validation split."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="Checkpoint to calibrate (default RUN/best.pt)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch."),
    limit: int = typer.Option(None, "--limit", help="Use only the first N validation images (quick checks)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report the threshold without storing it."),
) -> None:
    """Find the threshold maximising pooled F1 on the run's validation split and store it in the checkpoint."""
    from rich.table import Table

    from mitodet.infer.calibrate import calibrate
    from mitodet.infer.detector import Detector
    from mitodet.io.atomic import write_text
    from mitodet.model import load_checkpoint, save_checkpoint
    from mitodet.train.run import load_validation_set

    ckpt = checkpoint or run / "best.pt"
    det = Detector.from_checkpoint(ckpt, device=device, threads=threads)
    images = load_validation_set(run)[:limit] if limit else load_validation_set(run)
    if not images:
        raise MitodetError(run, "the validation split is empty")
    with _progress() as bar:
        task = bar.add_task("calibrating", total=len(images))
        result = calibrate(det, images, on_image=lambda _k: bar.advance(task))
    table = Table(title=f"calibration of {ckpt}")
    for c in ("images", "mitoses", "candidates", "threshold", "precision", "recall", "F1"):
        table.add_column(c, justify="right")
    table.add_row(str(result["n_images"]), str(result["n_mitoses"]), str(result["n_candidates"]),
                  f"{result['threshold']:.4f}", f"{result['precision']:.4f}", f"{result['recall']:.4f}", f"{result['f1']:.4f}")
    Console().print(table)
    write_text(run / "calibration.json", json.dumps({**result, "checkpoint": str(ckpt)}, indent=1) + "\n")
    if not dry_run:
        model, meta = load_checkpoint(ckpt)
        meta.update(threshold=result["threshold"], calibration={k: result[k] for k in
                    ("f1", "precision", "recall", "n_images", "n_mitoses")})
        save_checkpoint(ckpt, model, **meta)
        console.print(f"stored threshold {result['threshold']:.4f} in {ckpt}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("detect")(detect_cmd)
    app.command("calibrate")(calibrate_cmd)
