"""The benchmark task: classify mitosis-centred crops given as files or folders, and score the
calls against a truth (a CSV ``file,atypical``, or folders named ``Atypical/`` and ``Normal/``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mitodet.classify.data import centred_square
from mitodet.classify.predict import AtypicalClassifier
from mitodet.errors import MitodetError
from mitodet.io.files import csv_errors
from mitodet.io.image import IMAGE_SUFFIXES, read_image
from mitodet.resample import resample

CLASS_FOLDERS = {"atypical": True, "normal": False}
TRUE_WORDS = {"true", "1", "yes", "atypical", "amf"}
FALSE_WORDS = {"false", "0", "no", "normal", "nmf"}


def find_crops(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files of ``inputs`` (folders searched recursively, sorted), each once."""
    files: list[Path] = []
    seen: set[Path] = set()
    for given in map(Path, inputs):
        if given.is_dir():
            found = sorted(f for f in given.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        elif given.is_file():
            found = [given]
        else:
            raise MitodetError(given, "no such file or folder")
        for f in found:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                files.append(f)
    if not files:
        raise MitodetError(", ".join(map(str, inputs)), "no images found")
    return files


def read_crop(path: Path, mpp: float | None, clf: AtypicalClassifier) -> np.ndarray:
    """The classifier's input window of one crop (resampled to its spacing, centred)."""
    image, spacing = read_image(path, mpp)
    if spacing is None:
        raise MitodetError(path, "no pixel spacing stored in the file; pass --mpp")
    return centred_square(resample(image, spacing, clf.mpp)[0], clf.input)


def classify_crops(
    clf: AtypicalClassifier,
    files: Sequence[Path],
    mpp: float | None = None,
    batch: int = 256,
    on_done: Callable[[int], None] | None = None,
) -> np.ndarray:
    """P(atypical) of each crop file."""
    out = []
    for i in range(0, len(files), batch):
        part = files[i : i + batch]
        out.append(clf.probabilities(np.stack([read_crop(f, mpp, clf) for f in part])))
        if on_done:
            on_done(len(part))
    return np.concatenate(out) if out else np.zeros(0)


def _word(value: str, where: str, path: Path) -> bool:
    v = value.strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise MitodetError(path, f"{where}: atypical value {value!r} is neither atypical (true/1) nor normal (false/0)")


def truth_from_folders(files: Sequence[Path]) -> dict[Path, bool]:
    """Labels from the nearest parent folder named Atypical/ or Normal/ (any case)."""
    labels = {}
    for f in files:
        for parent in f.parents:
            if parent.name.lower() in CLASS_FOLDERS:
                labels[f] = CLASS_FOLDERS[parent.name.lower()]
                break
    return labels


def truth_from_csv(path: Path, files: Sequence[Path]) -> tuple[dict[Path, bool], list[str]]:
    """Labels from a ``file,atypical`` table -> (labels of the crops, the table's files no crop
    matched). A row's file matches a crop by its path (as given, or relative to the table's
    folder), else by its name where that name is unique among the crops."""
    with csv_errors(path), open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"file", "atypical"} <= set(rows[0]):
        raise MitodetError(path, "expected a CSV table with the columns file and atypical")
    by_path = {f.resolve(): f for f in files}
    names: dict[str, list[Path]] = {}
    for f in files:
        names.setdefault(f.name, []).append(f)
    labels, unmatched = {}, []
    for n, r in enumerate(rows, start=2):
        value = _word(r["atypical"] or "", f"line {n}", path)
        given = Path(r["file"].strip())
        hit = by_path.get(given.resolve()) or by_path.get((path.parent / given).resolve())
        if hit is None and len(names.get(given.name, [])) == 1:
            hit = names[given.name][0]
        if hit is None:
            unmatched.append(r["file"])
        else:
            labels[hit] = value
    return labels, unmatched


def read_truth(truth: Path, files: Sequence[Path]) -> tuple[dict[Path, bool], list[str]]:
    """The truth of ``files`` from a CSV table or from class folders (``truth`` a folder)."""
    if truth.is_dir():
        return truth_from_folders([f for f in files if truth.resolve() in f.resolve().parents]), []
    if not truth.is_file():
        raise MitodetError(truth, "no such truth file or folder")
    return truth_from_csv(truth, files)
