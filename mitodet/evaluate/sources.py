"""Ground truth and predictions for the MIDOG scorer, from the formats people have, checked.

The scorer works in millimetres. Accepted inputs:

ground truth (``--truth``)
    a MIDOG ground-truth JSON (2021/2022 ``{image: [[x, y, z], ...]}`` or the 2025 form with
    ``annotations``, mm); a folder of per-image point files ``<image>.geojson`` (QuPath export)
    or ``<image>.csv``; one CSV table with an ``image`` column; or a single ``.geojson``/``.csv``
    for one image. Point files hold pixels unless a CSV has ``x_mm, y_mm`` columns: pixels
    need the spacing (``mpp``). Only points classed "mitotic figure" (or unclassed) are truth.
predictions (``--pred``)
    a grand-challenge ``predictions.json``; a folder of per-image files
    (``<image>.mitotic-figures.json`` / ``<image>.json`` / ``<image>/mitotic-figures.json``,
    MIDOG "Multiple points" in mm, or ``<image>.geojson`` / ``<image>.csv`` as ``mitodet detect``
    writes them); or one such file for a single image.

Every coordinate and probability must be a finite number (a string, NaN, an empty ``point``
is a one-line error naming the file), and names must pair up: predictions that match no
ground-truth image, and images without predictions, are reported; when none pair up at all
it is an error, not an F1 of 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mitodet.errors import MitodetError
from mitodet.io.files import read_json
from mitodet.io.points import TablePoint, read_geojson_points, read_point_table
from mitodet.schema import MATCH_RADIUS_UM, MITOTIC_FIGURE, NON_MITOTIC, px_to_mm

RADIUS_MM = MATCH_RADIUS_UM / 1000.0  # the radius in the unit of MIDOG outputs
ROI_TYPES = ("hotspot", "challenging", "random")
VALID_NAMES = (MITOTIC_FIGURE, NON_MITOTIC)
MAX_MM = 10  # the 2025 evaluator rejects larger coordinates as "pixels, not mm"
POINT_SUFFIXES = (".geojson", ".csv")
AREAS_SUFFIX = ".annotations.geojson"  # detect's tissue outline and hotspot (areas, not points)
# Files in a predictions folder that are not predictions of an image.
NOT_PREDICTIONS = {"metrics.json", "predictions.json", "summary.csv"}  # summary.csv: detect's per-input counts
DEFAULT_PROBABILITY = 0.5  # MIDOG 2022: a point without a probability


@dataclass
class Case:
    """Ground truth of one image: points in mm plus its domain."""

    image: str
    points: list
    tumor_domain: int | str | None = None
    roi_type: str | None = None


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _short(v, n: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def _mm_point(p, source, where: str) -> list:
    """A MIDOG point ``[x, y]`` or ``[x, y, z]`` of finite numbers (mm), as given."""
    if not isinstance(p, list | tuple) or not 2 <= len(p) <= 3 or not all(_is_number(c) for c in p):
        raise MitodetError(
            source, f"{where}a point must be [x, y] or [x, y, z] of finite numbers (mm), got {_short(p)}"
        )
    return list(p)


def _is_geojson(doc) -> bool:
    return (isinstance(doc, dict) and doc.get("type") in ("FeatureCollection", "Feature")) or (
        isinstance(doc, list) and all(isinstance(f, dict) and f.get("type") == "Feature" for f in doc) and bool(doc)
    )


def _to_mm(points: list[TablePoint], mpp: float | None, source) -> list[tuple[float, float, TablePoint]]:
    """(x_mm, y_mm, point): pixels converted with ``mpp`` (µm/px), which they need."""
    out = []
    for p in points:
        if p.unit == "mm":
            out.append((p.x, p.y, p))
        elif mpp is None:
            raise MitodetError(
                source, "coordinates are in pixels; pass --mpp (µm/px of the images) to score them in mm"
            )
        else:
            out.append((float(px_to_mm(p.x, mpp)), float(px_to_mm(p.y, mpp)), p))
    return out


def _point_file(path: Path) -> list[TablePoint]:
    """Points of one per-image ``.csv`` or ``.geojson``/``.json`` (GeoJSON) file."""
    if path.suffix.lower() == ".csv":
        points, images = read_point_table(path)
        if len(set(images)) > 1:
            raise MitodetError(path, "holds several images (an image column); give it as a table, not per image")
        return points
    return read_geojson_points(path)


def image_name(path: Path) -> str:
    """The image a per-image point file stands for: its name without the point-file suffix
    (``A00_01_0.geojson`` -> ``A00_01_0``, ``case.tiff.csv`` -> ``case.tiff``)."""
    name = path.name
    for suffix in (".mitotic-figures.json", ".geojson", ".csv", ".json"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# -- ground truth ---------------------------------------------------------------------------
def load_ground_truth(path: str | Path, mpp: float | None = None) -> dict[str, Case]:
    """Ground truth from any accepted form (module doc) -> {image name: Case (points in mm)}."""
    path = Path(path)
    if path.is_dir():
        cases = _truth_folder(path, mpp)
    elif not path.exists():
        raise MitodetError(path, "file not found")
    elif path.suffix.lower() == ".csv":
        cases = _truth_table(path, mpp)
    elif path.suffix.lower() == ".geojson":
        cases = {image_name(path): Case(image_name(path), _truth_points(_point_file(path), mpp, path))}
    else:
        raw = read_json(path)
        if _is_geojson(raw):
            cases = {image_name(path): Case(image_name(path), _truth_points(read_geojson_points(path), mpp, path))}
        else:
            cases = _midog_truth(raw, path)
    if not cases:
        raise MitodetError(path, "ground truth holds no images")
    return cases


def _truth_points(points: list[TablePoint], mpp: float | None, source) -> list:
    return [[x, y, 0] for x, y, p in _to_mm(points, mpp, source) if p.label == MITOTIC_FIGURE]


def _midog_truth(raw, path: Path) -> dict[str, Case]:
    if not isinstance(raw, dict):
        raise MitodetError(path, "ground truth must be a JSON object {image name: points}")
    cases = {}
    for name, v in raw.items():
        if isinstance(v, dict):
            if "annotations" not in v:
                raise MitodetError(path, f"{name}: no 'annotations'")
            roi = v.get("roi type")
            if roi is not None and roi not in ROI_TYPES:
                raise MitodetError(path, f"{name}: invalid roi type {roi!r}; valid: {list(ROI_TYPES)}")
            ann, domain = v["annotations"], v.get("tumor domain")
        elif isinstance(v, list):
            ann, domain, roi = v, None, None
        else:
            raise MitodetError(path, f"{name}: expected a list of points or an object with 'annotations'")
        if not isinstance(ann, list):
            raise MitodetError(path, f"{name}: 'annotations' must be a list of points")
        points = [_mm_point(p, path, f"{name}: annotation {i}: ") for i, p in enumerate(ann)]
        cases[name] = Case(name, points, domain, roi)
    return cases


def label_files(folder: Path) -> list[Path]:
    """The per-image point files of a folder (``.geojson``, ``.csv``, ``.json``), sorted; not
    detect's ``<stem>.annotations.geojson`` (tissue and hotspot areas are no labels)."""
    return sorted(
        f
        for f in folder.iterdir()
        if f.is_file() and f.suffix.lower() in (*POINT_SUFFIXES, ".json") and not f.name.lower().endswith(AREAS_SUFFIX)
    )


def _truth_folder(folder: Path, mpp: float | None) -> dict[str, Case]:
    files = label_files(folder)
    if not files:
        raise MitodetError(folder, "no ground-truth point files (<image>.geojson or <image>.csv) in this folder")
    cases: dict[str, Case] = {}
    for f in files:
        name = image_name(f)
        if name in cases:
            raise MitodetError(folder, f"two ground-truth files for image {name!r}")
        cases[name] = Case(name, _truth_points(_point_file(f), mpp, f))
    return cases


def _truth_table(path: Path, mpp: float | None) -> dict[str, Case]:
    points, images = read_point_table(path)
    if not images:  # no image column: the whole table is one image
        name = image_name(path)
        return {name: Case(name, _truth_points(points, mpp, path))}
    by_image: dict[str, list[TablePoint]] = {name: [] for name in images}
    for p in points:
        by_image[str(p.image)].append(p)
    return {name: Case(name, _truth_points(pts, mpp, path)) for name, pts in by_image.items()}


# -- predictions ----------------------------------------------------------------------------
def parse_points(doc, source, strict: bool = False) -> tuple[list, list]:
    """Multiple-points JSON -> ([x, y, z, class, probability], warnings).

    ``strict`` applies the 2025 checks (name and probability required, coordinates in mm);
    otherwise missing fields default as in 2022 (class 1, probability 0.5) and suspect
    coordinates are only reported, which is how the published ``metrics.json`` was made.
    Malformed values (a ``point`` that is not 2-3 finite numbers, a probability that is not a
    finite number) are errors in both modes: they cannot be scored.
    """
    if not isinstance(doc, dict) or "points" not in doc:
        raise MitodetError(source, 'results must be an object with a "points" field')
    if not isinstance(doc["points"], list):
        raise MitodetError(source, '"points" must be a list')
    out, warnings = [], []
    unknown: dict[str, int] = {}
    for i, p in enumerate(doc["points"]):
        where = f"point {i}: "
        if not isinstance(p, dict) or "point" not in p:
            if strict:
                raise MitodetError(source, f"{where}each point needs a 'point' field: {_short(p)}")
            warnings.append(f"point without coordinates skipped: {_short(p)}")
            continue
        name = p.get("name")
        if strict and (name is None or "probability" not in p):
            raise MitodetError(source, "each point needs 'name' and 'probability' (2022+ format)")
        if name is not None and name not in VALID_NAMES:
            if strict:
                raise MitodetError(source, f"invalid name {name!r}; valid: {list(VALID_NAMES)}")
            unknown[str(name)] = unknown.get(str(name), 0) + 1
        cls = 1 if name is None or name == MITOTIC_FIGURE else 0
        prob = p.get("probability")
        prob = DEFAULT_PROBABILITY if prob is None else prob  # absent or null: the 2022 default
        if not _is_number(prob):
            raise MitodetError(source, f"{where}probability {_short(prob)} is not a finite number")
        xyz = _mm_point(p["point"], source, where)
        xyz += [0] * (3 - len(xyz))
        if xyz[0] > MAX_MM or xyz[1] > MAX_MM or xyz[0] < -RADIUS_MM or xyz[1] < -RADIUS_MM:
            msg = f"coordinates {xyz[:2]} outside 0..{MAX_MM} mm (pixels instead of millimetres?)"
            if strict:
                raise MitodetError(source, msg)
            warnings.append(msg)
        out.append([*xyz, cls, float(prob)])
    for name, n in unknown.items():
        warnings.append(f"{n} point(s) named {name!r} (not {' / '.join(VALID_NAMES)}) counted as non-mitotic")
    return out, warnings


def _points_from_file(path: Path, strict: bool, mpp: float | None) -> tuple[list, list]:
    """Predictions of one image from a MIDOG JSON, GeoJSON or CSV file."""
    if path.suffix.lower() == ".csv" or path.suffix.lower() == ".geojson":
        return _scored_points(_point_file(path), strict, mpp, path)
    doc = read_json(path)
    if _is_geojson(doc):
        return _scored_points(read_geojson_points(path), strict, mpp, path)
    return parse_points(doc, path, strict)


def _scored_points(points: list[TablePoint], strict: bool, mpp: float | None, source) -> tuple[list, list]:
    out = []
    for x, y, p in _to_mm(points, mpp, source):
        if p.probability is None and strict:
            raise MitodetError(source, "each point needs a probability (strict)")
        prob = DEFAULT_PROBABILITY if p.probability is None else p.probability
        out.append([x, y, 0, 1 if p.label == MITOTIC_FIGURE else 0, prob])
    return out, []


def _prediction_key(entry: Path) -> str | None:
    """The image name a file or folder in a predictions folder stands for (None: not a prediction)."""
    if entry.is_dir():
        return entry.name if (entry / "mitotic-figures.json").is_file() else None
    name = entry.name.lower()
    if name in NOT_PREDICTIONS or name.endswith((".partial.json", AREAS_SUFFIX)):
        return None
    if not name.endswith((".json", *POINT_SUFFIXES)):
        return None
    return image_name(entry)


def _listing(names: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(sorted(names)[:n])
    return shown + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def match_predictions(
    path: str | Path, images: Sequence[str], strict: bool = False, mpp: float | None = None
) -> tuple[dict[str, tuple[list, list]], list[str]]:
    """Predictions for each ground-truth image -> ({image: (points, warnings)}, warnings).

    ``path`` is a grand-challenge ``predictions.json`` (job list; each job's
    ``<pk>/[output/]mitotic-figures.json`` beside it), a folder of per-image files (module doc),
    or one file for a single image. Images without a prediction file have no detections, which
    is reported; predictions of images that are not in the ground truth are reported and not
    scored; when no prediction pairs with any ground-truth image it is an error.

    Long because it pairs each accepted form of predictions (one file, a grand-challenge job
    list, a folder) by one rule, refusing ambiguity in each."""
    path = Path(path)
    found: dict[str, Path] = {}
    notes: list[str] = []
    if path.is_dir() and (path / "predictions.json").is_file():
        path = path / "predictions.json"
    if path.is_file():
        doc = read_json(path) if path.suffix.lower() == ".json" else None
        if isinstance(doc, list) and not _is_geojson(doc):  # grand-challenge job list
            foreign = []
            for job in doc:
                try:
                    name = next(v["image"]["name"] for v in job["inputs"] if v.get("image"))
                    rel = next(
                        v["interface"]["relative_path"]
                        for v in job["outputs"]
                        if v["interface"]["slug"] == "mitotic-figures"
                    )
                    pk = str(job["pk"])
                except (KeyError, StopIteration, TypeError, AttributeError):
                    raise MitodetError(path, "not a grand-challenge predictions.json job list") from None
                if name not in images:
                    foreign.append(name)
                    continue
                for cand in (path.parent / pk / "output" / rel, path.parent / pk / rel):
                    if not cand.resolve().is_relative_to(path.parent.resolve()):
                        raise MitodetError(path, f"job {pk}: its output {pk}/{rel} lies outside the predictions folder")
                    if cand.is_file():
                        found[name] = cand
                        break
                else:
                    raise MitodetError(path.parent / pk, f"no {rel} for {name}")
            if foreign and not found:
                raise MitodetError(
                    path,
                    f"none of its {len(foreign)} image name(s) is in the ground truth "
                    f"(predictions: {_listing(foreign)}; ground truth: {_listing(images)})",
                )
            if foreign:
                notes.append(
                    f"{len(foreign)} predicted image(s) not in the ground truth, not scored: {_listing(foreign)}"
                )
        elif len(images) == 1:
            found[images[0]] = path
        else:
            raise MitodetError(path, "a single prediction file but several ground-truth images; pass a folder")
    elif path.is_dir():
        keys = {k: e for e in sorted(path.iterdir()) if (k := _prediction_key(e)) is not None}
        if not keys:
            raise MitodetError(
                path, "no prediction files in this folder (<image>.mitotic-figures.json, .json, .geojson or .csv)"
            )
        used: set[str] = set()
        for name in images:
            for key in dict.fromkeys((name, Path(name).stem)):
                cands = (
                    path / f"{key}.mitotic-figures.json",
                    path / f"{key}.json",
                    path / key / "mitotic-figures.json",
                    path / f"{key}.geojson",
                    path / f"{key}.csv",
                )
                hit = next((c for c in cands if c.is_file()), None)
                if hit is not None:
                    other = next((n for n, f in found.items() if f == hit), None)
                    if other is not None:  # e.g. case.tiff and case.png both stripped to "case"
                        raise MitodetError(
                            hit, f"would be the predictions of two ground-truth images, {other} and {name}; rename it"
                        )
                    found[name] = hit
                    used.add(key)
                    break
        foreign = [k for k in keys if k not in used]
        if not found:
            raise MitodetError(
                path,
                f"no prediction file matches a ground-truth image name "
                f"(predictions: {_listing(foreign)}; ground truth: {_listing(images)})",
            )
        if foreign:
            notes.append(
                f"{len(foreign)} prediction file(s) match no ground-truth image, not scored: "
                f"{_listing([keys[k].name for k in foreign])}"
            )
    else:
        raise MitodetError(path, "file not found")
    missing = [name for name in images if name not in found]
    if missing:
        notes.append(
            f"{len(missing)} of {len(images)} ground-truth image(s) have no predictions "
            f"(their mitoses count as missed): {_listing(missing)}"
        )
    return {name: _points_from_file(f, strict, mpp) for name, f in found.items()}, notes
