"""The Python API: ``mitodet.detect(source) -> Result``, ``mitodet.pretrained()``, ``mitodet.evaluate``.

``detect`` runs the pipeline of ``mitodet detect`` itself (:func:`mitodet.infer.run.run_inputs`:
tissue mask, cascade, regions of whole slides, summary), so its points are the CLI's to the last
digit. The pipeline writes its outputs atomically into a private temporary folder, which this
module reads back into memory and removes: nothing of the user's is written unless
:meth:`Result.save` is called. An array or PIL image is handed to it as a lossless TIFF carrying
``mpp`` in its resolution tags (the same bytes ``mitodet detect`` would read from such a file).

Everything here imports torch and ONNX Runtime on first use; ``import mitodet`` stays light.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mitodet.errors import MitodetError


def __getattr__(name: str):
    if name == "AtypicalClassifier":  # loads torch: only when asked for
        from mitodet.classify.predict import AtypicalClassifier

        return AtypicalClassifier
    raise AttributeError(f"module 'mitodet.api' has no attribute {name!r}")


POINT_COLUMNS = ("x_px", "y_px", "x_mm", "y_mm", "probability", "atypical_probability", "label")
ProgressFn = Callable[[int, int], None]


@dataclass
class Result:
    """What ``mitodet detect`` finds in one input, held in memory.

    ``points``: the rows of the CLI's ``<stem>.csv`` (floats, and ``label``); ``summary``: the
    JSON summary (figures, tissue mm², per mm², hotspot, ...); ``files``: every output file's
    bytes by suffix (``mitotic-figures.json``, ``csv``, ``geojson``, ``report.html``, ...)."""

    input: str
    points: list[dict[str, Any]]
    summary: dict[str, Any]
    stem: str
    files: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def mitotic_figures(self) -> list[dict[str, Any]]:
        """The points called mitotic figures (the others are candidates below the threshold)."""
        return [p for p in self.points if p["label"] == "mitotic figure"]

    def to_pandas(self):
        """The points as a pandas DataFrame (the columns of POINT_COLUMNS)."""
        try:
            import pandas as pd
        except ImportError:  # pandas is not a dependency of mitodet
            raise MitodetError("to_pandas", "pandas is not installed (pip install pandas)") from None
        return pd.DataFrame(self.points, columns=list(POINT_COLUMNS))

    def save(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write the CLI's files for this input into ``out_dir`` (atomically); returns their paths."""
        from mitodet.io.atomic import atomic_open

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix, data in self.files.items():
            path = out / f"{self.stem}.{suffix}"
            with atomic_open(path, "wb") as fh:
                fh.write(data)
            written.append(path)
        return written


def load_models(
    models: Sequence[str | os.PathLike] | None = None,
    *,
    device: str = "cpu",
    threads: int | None = None,
    backend: str = "auto",
    tile: int | None = None,
    batch_size: int | None = None,
) -> list:
    """Detectors of one or two checkpoints (two: the agreement ensemble); ``None``: the bundled
    pair. Load once and pass to :func:`detect` for many calls."""
    from mitodet.infer.dense import DEFAULT_BATCH, DEFAULT_TILE
    from mitodet.infer.run import load_detectors
    from mitodet.resources import DEFAULT_MODELS

    paths = [Path(m) for m in models] if models else DEFAULT_MODELS
    kwargs = dict(device=device, backend=backend, tile=tile or DEFAULT_TILE, batch_size=batch_size or DEFAULT_BATCH)
    return load_detectors(paths, threads=threads, **kwargs)


def pretrained(**kwargs) -> list:
    """The bundled CA-RGB + CA-OD pair (see :func:`load_models` for the options)."""
    return load_models(None, **kwargs)


def _as_detectors(models) -> list:
    from mitodet.infer.detector import Detector

    if models is None:
        return pretrained()
    if isinstance(models, Detector):
        return [models]
    models = list(models)
    if models and all(isinstance(m, Detector) for m in models):
        return models
    if all(isinstance(m, (str, os.PathLike)) for m in models):
        return load_models(models)
    raise MitodetError("models", "expected None, checkpoint paths, or detectors from mitodet.load_models()")


def _slide_path(source) -> Path | None:
    """The file behind an OpenSlide or tiffslide object (read again by the pipeline, region by region)."""
    for attr in ("_filename", "filename"):
        name = getattr(source, attr, None)
        if isinstance(name, (str, os.PathLike)) and Path(name).is_file():
            return Path(name)
    # tiffslide keeps the open TiffFile, whose file handle knows the path
    handle = getattr(getattr(source, "_tifffile", None), "filehandle", None)
    fs_path = getattr(handle, "path", None)
    if isinstance(fs_path, (str, os.PathLike)) and Path(fs_path).is_file():
        return Path(fs_path)
    return None


def _as_array(source) -> np.ndarray | None:
    """An (H, W, 3) uint8 array of a numpy array or PIL image; None for anything else."""
    if isinstance(source, np.ndarray):
        arr = source
    elif hasattr(source, "mode") and hasattr(source, "convert") and hasattr(source, "size"):  # PIL.Image
        arr = np.asarray(source.convert("RGB"))
    else:
        return None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise MitodetError("source", f"expected an (H, W, 3) uint8 RGB array, got {arr.shape} {arr.dtype}")
    return np.ascontiguousarray(arr)


def _write_tiff(arr: np.ndarray, mpp: float | None, folder: Path, name: str) -> Path:
    import tifffile

    from mitodet.io.image import check_mpp

    if mpp is None:
        raise MitodetError("mpp", "an array or PIL image has no pixel spacing: pass mpp=... (µm per pixel)")
    check_mpp(mpp, "mpp")
    path = folder / name
    res = 1e4 / mpp  # pixels per centimetre
    tifffile.imwrite(path, arr, photometric="rgb", resolution=(res, res), resolutionunit="CENTIMETER")
    return path


def _progress_callbacks(progress: bool | ProgressFn) -> tuple[Any, ProgressFn | None]:
    """A context (a rich bar when ``progress`` is True) and the regions callback (done, total)."""
    import contextlib

    if callable(progress):
        return contextlib.nullcontext(), progress
    if not progress:
        return contextlib.nullcontext(), None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("regions", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


def _as_classifier(atypical):
    """None (off), or the classifier that ``atypical`` names (True: the bundled one)."""
    if atypical is False or atypical is None:
        return None
    from mitodet.classify.predict import AtypicalClassifier

    if isinstance(atypical, AtypicalClassifier):
        return atypical
    return AtypicalClassifier.from_checkpoint(None if atypical is True else atypical)


def _read_points(data: bytes) -> list[dict[str, Any]]:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))

    def value(k: str, v: str | None):
        return v if k == "label" else (float(v) if v not in (None, "") else None)

    return [{k: value(k, r.get(k)) for k in POINT_COLUMNS} for r in rows]


def detect(
    source,
    *,
    mpp: float | None = None,
    models=None,
    threshold: float | None = None,
    tissue: bool = True,
    hotspot_mm2: float | None = None,
    positives_only: bool = False,
    full_ensemble: bool = False,
    report: bool = True,
    overlay: bool = False,
    atypical=True,
    name: str | None = None,
    progress: bool | ProgressFn = False,
) -> Result:
    """Detect mitotic figures in one image or slide, as ``mitodet detect`` does.

    ``source``: a path (image or slide), an (H, W, 3) uint8 numpy array, a PIL image, or an
    OpenSlide / tiffslide object. ``mpp`` (µm/px) is needed for arrays and PIL images and for
    files that store no spacing. ``models``: None (the bundled pair), checkpoint paths, or
    detectors from :func:`load_models`. ``atypical``: True (the bundled atypical-vs-normal
    classifier gives each mitotic figure ``atypical_probability``), False, a checkpoint path or an
    :class:`~mitodet.classify.predict.AtypicalClassifier`. ``progress``: True for a progress bar, or a callback
    ``(regions done, total)``. Errors are :class:`mitodet.errors.MitodetError` with one line.
    Long because it accepts every kind of source and option the CLI does, each checked here.
    """
    from mitodet.infer.run import Options, run_inputs
    from mitodet.infer.summary import DEFAULT_HOTSPOT_MM2

    detectors = _as_detectors(models)
    with tempfile.TemporaryDirectory(prefix="mitodet-api-") as tmp:
        tmp_dir = Path(tmp)
        arr = _as_array(source)
        if arr is not None:
            path = _write_tiff(arr, mpp, tmp_dir, f"{name or 'image'}.tiff")
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
        else:
            path = _slide_path(source)  # type: ignore[assignment]
            if path is None:
                raise MitodetError(
                    "source", f"cannot read a {type(source).__name__}: give a path, array, PIL image or slide object"
                )
        opts = Options(
            mpp=mpp,
            threshold=threshold,
            overlay=overlay,
            positives_only=positives_only,
            full=full_ensemble,
            tissue=tissue,
            hotspot_mm2=hotspot_mm2 if hotspot_mm2 is not None else DEFAULT_HOTSPOT_MM2,
            report=report,
            force=True,
            atypical=_as_classifier(atypical),
        )
        errors: list[Exception] = []

        def on_result(p, n, err) -> None:
            if err is not None:
                errors.append(err)

        context, on_progress = _progress_callbacks(progress)
        out = tmp_dir / "out"
        with context:
            run_inputs(
                detectors,
                [path],
                out,
                options=opts,
                on_result=on_result,
                on_regions=(lambda _p, d, t: on_progress(d, t)) if on_progress else None,
            )
        if errors:
            err = errors[0]
            raise err if isinstance(err, MitodetError) else MitodetError(path, str(err))
        docs = sorted(out.glob("*.mitotic-figures.json"))
        if len(docs) != 1:
            raise MitodetError(path, f"expected one result, found {len(docs)} (a multi-page stack? pass one page)")
        stem = docs[0].name[: -len(".mitotic-figures.json")]
        files = {
            f.name[len(stem) + 1 :]: f.read_bytes() for f in sorted(out.iterdir()) if f.name.startswith(stem + ".")
        }
    doc = json.loads(files["mitotic-figures.json"])
    return Result(str(name or path), _read_points(files["csv"]), doc.get("summary", {}), stem, files)


def evaluate(truth, predictions, *, mpp: float | None = None, strict: bool = False) -> dict:
    """Score predictions against ground truth with the official MIDOG rules (7.5 µm, pooled F1,
    AP, FROC); ``truth`` / ``predictions`` are the paths ``mitodet evaluate --truth / --pred``
    read (MIDOG JSON, a folder of per-image files, QuPath GeoJSON or CSV with ``mpp``)."""
    from mitodet.evaluate.midog import evaluate as score

    return score(truth, predictions, strict=strict, mpp=mpp)
