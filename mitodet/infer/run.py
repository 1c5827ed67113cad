"""Running detection over files: images, folders, whole slides (by regions, resumable)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from mitodet.errors import MitodetError
from mitodet.infer.detector import Detector
from mitodet.infer.ensemble import detect_image
from mitodet.infer.outputs import midog_points, write_csv, write_geojson, write_midog_json, write_overlay
from mitodet.io.atomic import write_text
from mitodet.io.image import IMAGE_SUFFIXES, image_size, read_image
from mitodet.io.slide import UpsamplingWarning, open_slide
from mitodet.schema import Detection, count_mitoses, match_radius_px

SLIDE_SUFFIXES = {".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"}
SLIDE_MIN_PIXELS = 12_000 * 12_000  # larger inputs are processed by regions
REGION = 4096  # region side in model pixels


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Files of the given paths; folders contribute their images and slides (sorted, not recursive)."""
    files = []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            files += sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES | SLIDE_SUFFIXES
            )
        else:
            files.append(p)  # missing files are reported (and skipped) when processed
    if not files:
        raise MitodetError(", ".join(map(str, inputs)), "no images found")
    return files


def load_detectors(paths: list[Path], **kwargs) -> list[Detector]:
    if len(paths) > 2:
        raise MitodetError(None, f"give one model, or two for the ensemble (got {len(paths)})")
    return [Detector.from_checkpoint(p, **kwargs) for p in paths]


def outputs_for(out: Path, stem: str) -> dict[str, Path]:
    return {k: out / f"{stem}.{k}" for k in ("mitotic-figures.json", "csv", "geojson", "overlay.png")}


def overlay_caption(detectors: list[Detector], threshold: float | None) -> str:
    """Overlay subtitle: the model(s) and the threshold(s) applied."""
    t = [threshold if threshold is not None else d.threshold for d in detectors]
    kind = "agreement ensemble of " if len(detectors) == 2 else "model "
    return kind + " + ".join(d.name for d in detectors) + "   threshold " + " / ".join(f"{v:.3f}" for v in t)


def write_outputs(
    out: Path,
    stem: str,
    dets: list[Detection],
    mpp: float,
    image: np.ndarray | None,
    overlay: bool,
    models: list[str],
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """All per-image outputs; the MIDOG JSON last, as the 'finished' marker."""
    paths = outputs_for(out, stem)
    write_csv(paths["csv"], dets, mpp)
    write_geojson(paths["geojson"], dets)
    if overlay and image is not None:
        write_overlay(paths["overlay.png"], image, dets, match_radius_px(mpp), title=title, subtitle=caption)
    write_midog_json(paths["mitotic-figures.json"], dets, mpp)


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


def detect_file(
    detectors: list[Detector],
    path: Path,
    out: Path,
    mpp: float | None = None,
    threshold: float | None = None,
    overlay: bool = False,
    force: bool = False,
    on_tiles=None,
    note=None,
) -> int | None:
    """Detect in one file and write its outputs; None when skipped (already done).

    ``note(text)`` receives remarks for the user (e.g. upsampling) instead of Python warnings."""
    path = Path(path)
    if not path.is_file():
        raise MitodetError(path, "file not found")
    done = outputs_for(out, path.stem)["mitotic-figures.json"]
    if done.exists() and not force:
        return None
    models = [d.name for d in detectors]
    caption = overlay_caption(detectors, threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UpsamplingWarning)  # reported once through note() below
        if _is_slide(path):
            with open_slide(path, mpp) as s:
                spacing = s.mpp
            text = upsampling_note(path.name, spacing, detectors[0].mpp)
            if text and note:
                note(text)
            dets, spacing = detect_slide(detectors, path, out, mpp, threshold, force, on_tiles)
            image = None
            if overlay:
                with open_slide(path, mpp) as s:
                    image, f = slide_thumbnail(s)
                if f < 1:
                    dets_o = [
                        Detection((d.x + 0.5) * f - 0.5, (d.y + 0.5) * f - 0.5, d.probability, d.label) for d in dets
                    ]
                    write_outputs(out, path.stem, dets, spacing, None, False, models)
                    write_overlay(
                        outputs_for(out, path.stem)["overlay.png"],
                        image,
                        dets_o,
                        match_radius_px(spacing) * f,
                        title=path.name,
                        subtitle=caption,
                    )
                    return count_mitoses(dets)
        else:
            image, stored = read_image(path, mpp)
            if stored is None:
                raise MitodetError(path, "no pixel spacing stored in the file; pass --mpp")
            spacing = stored
            text = upsampling_note(path.name, spacing, detectors[0].mpp)
            if text and note:
                note(text)
            dets = detect_image(detectors, image, spacing, threshold, on_tiles)
    write_outputs(out, path.stem, dets, spacing, image, overlay, models, title=path.name, caption=caption)
    return count_mitoses(dets)


def slide_thumbnail(slide, max_side: int = 4096) -> tuple[np.ndarray, float]:
    """The whole slide at most ``max_side`` pixels a side, assembled block by block so that no
    read holds more than about REGION x REGION pixels of the pyramid level it comes from.
    Returns (image, f) with f = thumbnail px per level-0 px (<= 1)."""
    W0, H0 = slide.dimensions
    f = min(1.0, max_side / max(W0, H0))
    t_mpp = slide.mpp / f
    W, H = slide.size_at(t_mpp)
    ds = slide.level_downsamples[slide.best_level(t_mpp)]
    block = int(max(64, min(max(W, H), REGION * f * ds)))  # thumbnail px whose source is ~REGION level px
    thumb = np.empty((H, W, 3), np.uint8)
    for y in range(0, H, block):
        for x in range(0, W, block):
            w, h = min(block, W - x), min(block, H - y)
            thumb[y : y + h, x : x + w] = slide.read_region(x, y, w, h, t_mpp)
    return thumb, f


def _tissue(region: np.ndarray) -> bool:
    """False for (nearly) blank background regions, which are skipped."""
    small = region[::8, ::8].astype(np.int16)
    sat = small.max(axis=2) - small.min(axis=2)
    return bool((sat > 20).mean() > 0.001)


def detect_slide(
    detectors: list[Detector],
    path: Path,
    out: Path,
    mpp: float | None,
    threshold: float | None,
    force: bool,
    on_tiles=None,
) -> tuple[list[Detection], float]:
    """Whole slide by regions at the model spacing; finished regions are kept in
    ``<stem>.partial.json`` so an interrupted run resumes. Returns level-0 detections and spacing."""
    model_mpp = detectors[0].mpp
    rf = max(d.model.receptive_field for d in detectors)
    margin = 2 * (rf // 2 + 2 * int(np.ceil(match_radius_px(model_mpp))) // 2 + 2)  # even, > rf/2 + min distance
    partial = out / f"{path.stem}.partial.json"
    state = {}
    if partial.exists() and not force:
        try:
            state = json.loads(partial.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            state = {}
    with open_slide(path, mpp) as slide:
        W, H = slide.size_at(model_mpp)
        f = model_mpp / slide.mpp  # level-0 px per model px
        regions = [(x, y) for y in range(0, H, REGION) for x in range(0, W, REGION)]
        for k, (x, y) in enumerate(regions):
            key = f"{x},{y}"
            if key not in state:
                w, h = min(REGION, W - x), min(REGION, H - y)
                region = slide.read_region(
                    x - margin, y - margin, w + 2 * margin, h + 2 * margin, model_mpp, detectors[0].interpolation
                )
                found = []
                if _tissue(region):
                    dets = detect_image(detectors, region, model_mpp, threshold)
                    for d in dets:
                        cx, cy = d.x - margin, d.y - margin
                        if 0 <= cx < w and 0 <= cy < h:  # keep the region core only
                            found.append([(x + cx + 0.5) * f - 0.5, (y + cy + 0.5) * f - 0.5, d.probability, d.label])
                state[key] = found
                out.mkdir(parents=True, exist_ok=True)
                write_text(partial, json.dumps(state))
            if on_tiles:
                on_tiles(k + 1, len(regions))
        spacing = slide.mpp
    dets = [Detection(*v) for key in state for v in state[key]]
    dets.sort(key=lambda d: -d.probability)
    partial.unlink(missing_ok=True)
    return dets, spacing


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
) -> int:
    """Detect in every file; a failing file is reported through ``on_result(path, None, error)``
    and skipped. ``on_result(path, n, None)`` gets the mitotic-figure count (None: skipped as done).
    Returns the number of files that failed."""
    failed = 0
    for path in map(Path, files):
        if on_file:
            on_file(path)
        n, error = None, None
        try:
            n = detect_file(detectors, path, out, mpp, threshold, overlay, force, on_tiles=on_tiles, note=note)
        except MitodetError as err:
            error = err
        except (OSError, ValueError) as err:  # unreadable/odd file the readers did not classify
            error = MitodetError(path, f"{type(err).__name__}: {err}")
        if error is not None:
            failed += 1
        if on_result:
            on_result(path, n, error)
    return failed


def run_grand_challenge(detectors, gc_input: Path, gc_output: Path, mpp=None, threshold=None) -> int:
    """Container mode: the one image under ``gc_input/images/`` -> ``gc_output/mitotic-figures.json``."""
    files = sorted(p for p in (Path(gc_input) / "images").rglob("*") if p.suffix.lower() in {".tif", ".tiff"})
    if len(files) != 1:
        raise MitodetError(Path(gc_input) / "images", f"expected exactly one TIFF, found {len(files)}")
    image, spacing = read_image(files[0], mpp)
    if spacing is None:
        raise MitodetError(files[0], "no pixel spacing in the TIFF tags; pass --mpp")
    dets = detect_image(detectors, image, spacing, threshold)
    write_text(Path(gc_output) / "mitotic-figures.json", json.dumps(midog_points(dets, spacing), indent=1) + "\n")
    return count_mitoses(dets)
