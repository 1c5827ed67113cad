"""Point import/export: CSV tables and QuPath-importable GeoJSON.

CSV columns: ``x_px, y_px[, x_mm, y_mm][, probability], label``; the millimetre
columns appear only when the pixel spacing is known, the probability column only
when scores are given. Imposters are written as "non-mitotic figure" (the MIDOG
output wording); the readers accept that, the MIDOG category name and "imposter".

GeoJSON: a FeatureCollection of ``Point`` features with QuPath's
``properties.objectType`` / ``classification {name, color}`` / ``measurements``.
Coordinates are written as they are (image pixels); QuPath puts the pixel
corner at 0, half a pixel away from the schema's pixel-centre convention, far
below the precision of a mitosis annotation.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_open, write_csv
from mitodet.io.files import csv_errors, read_json
from mitodet.schema import (
    ATYPICAL_FIGURE,
    HOTSPOT_AREA,
    IMPOSTER,
    MITOTIC_FIGURE,
    NEGATIVE,
    NON_MITOTIC,
    OUTPUT_NAME,
    TISSUE_AREA,
    Point,
    px_to_mm,
)

COLORS = {MITOTIC_FIGURE: [220, 30, 30], IMPOSTER: [30, 120, 220], NEGATIVE: [120, 120, 120]}
CLASS_COLORS = {ATYPICAL_FIGURE: [240, 150, 0]}  # extra class names written by detect

# Every spelling a reader accepts, lower-case -> schema label.
_LABEL_ALIASES = {
    MITOTIC_FIGURE: MITOTIC_FIGURE,
    ATYPICAL_FIGURE: MITOTIC_FIGURE,  # detect's atypical-vs-normal call: still a mitotic figure
    "normal mitotic figure": MITOTIC_FIGURE,
    "mitotic_figure": MITOTIC_FIGURE,
    "mitosis": MITOTIC_FIGURE,
    "mitose": MITOTIC_FIGURE,
    "mf": MITOTIC_FIGURE,
    "1": MITOTIC_FIGURE,
    IMPOSTER: IMPOSTER,
    NON_MITOTIC: IMPOSTER,
    "non mitotic figure": IMPOSTER,
    "imposter": IMPOSTER,
    "non-mitosis": IMPOSTER,
    "non mitosis": IMPOSTER,
    "hard negative": IMPOSTER,
    "2": IMPOSTER,
    NEGATIVE: NEGATIVE,
}


def parse_label(text: str, source: str | os.PathLike, where: str = "") -> str:
    """Map a written class name to a schema label, or raise MitodetError."""
    label = _LABEL_ALIASES.get(str(text).strip().lower())
    if label is None:
        raise MitodetError(
            source, f"{where}unknown class {text!r} (expected mitotic figure / non-mitotic figure / negative)"
        )
    return label


def _check_scores(points: Sequence[Point], scores: Sequence[float] | None) -> None:
    if scores is not None and len(scores) != len(points):
        raise ValueError(f"{len(scores)} scores for {len(points)} points")


def write_points_csv(
    path: str | os.PathLike,
    points: Sequence[Point],
    mpp: float | None = None,
    scores: Sequence[float] | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Write points as a CSV table (atomically); millimetres from ``mpp`` µm/px when given;
    ``extra``: more columns (name -> one written value per point), before the label."""
    _check_scores(points, scores)
    extra = extra or {}
    header = ["x_px", "y_px"]
    if mpp is not None:
        header += ["x_mm", "y_mm"]
    if scores is not None:
        header += ["probability"]
    header += list(extra) + ["label"]

    def rows():
        for i, p in enumerate(points):
            row: list = [f"{p.x:.2f}", f"{p.y:.2f}"]
            if mpp is not None:
                row += [f"{px_to_mm(p.x, mpp):.6f}", f"{px_to_mm(p.y, mpp):.6f}"]
            if scores is not None:
                row += [f"{float(scores[i]):.6f}"]
            row += [values[i] for values in extra.values()] + [OUTPUT_NAME[p.label]]
            yield row

    write_csv(path, header, rows())


def _number(text: str, source, where: str) -> float:
    if text is None or (isinstance(text, str) and not text.strip()):
        raise MitodetError(source, f"{where}a number is missing")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise MitodetError(source, f"{where}not a number: {text!r}") from None
    if not math.isfinite(value):
        raise MitodetError(source, f"{where}not a finite number: {text!r}")
    return value


def read_points_csv(path: str | os.PathLike) -> list[Point]:
    """Read points from a CSV with ``x_px,y_px`` (or ``x,y``) and an optional ``label`` column."""
    path = Path(path)
    with csv_errors(path):
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            reader.fieldnames = fields
            xk, yk = ("x_px", "y_px") if "x_px" in fields else ("x", "y")
            if xk not in fields or yk not in fields:
                raise MitodetError(
                    path, f"not a point table: needs columns x_px,y_px (found {','.join(fields) or 'none'})"
                )
            points = []
            for n, row in enumerate(reader, start=2):
                where = f"line {n}: "
                x = _number(row[xk], path, where)
                y = _number(row[yk], path, where)
                label = parse_label(row["label"], path, where) if row.get("label") not in (None, "") else MITOTIC_FIGURE
                if x < 0 or y < 0:
                    raise MitodetError(path, f"{where}point ({x}, {y}) has a negative coordinate")
                points.append(Point(x, y, label))
    return points


def points_to_geojson(
    points: Sequence[Point],
    scores: Sequence[float] | None = None,
    measurements: Sequence[dict] | None = None,
    names: Sequence[str | None] | None = None,
    ids: Sequence[str] | None = None,
) -> dict:
    """A QuPath-importable FeatureCollection; scores become the 'probability' measurement;
    ``names`` (one per point, None: the label's name) set a point's class name (and colour)."""
    _check_scores(points, scores)
    if measurements is not None and len(measurements) != len(points):
        raise ValueError(f"{len(measurements)} measurement sets for {len(points)} points")
    features = []
    for i, p in enumerate(points):
        meas = {}
        if scores is not None:
            meas["probability"] = float(scores[i])
        if measurements is not None:
            meas.update({str(k): float(v) for k, v in measurements[i].items()})
        name = (names[i] if names is not None else None) or OUTPUT_NAME[p.label]
        props: dict = {
            "objectType": "annotation",
            "classification": {"name": name, "color": CLASS_COLORS.get(name, COLORS[p.label])},
            "isLocked": False,
        }
        if meas:
            props["measurements"] = meas
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(p.x), float(p.y)]},
            "properties": props,
        }
        if ids is not None:
            feature["id"] = ids[i]
        elif p.id is not None:
            feature["id"] = str(p.id)
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def write_points_geojson(
    path: str | os.PathLike,
    points: Sequence[Point],
    scores: Sequence[float] | None = None,
    measurements: Sequence[dict] | None = None,
    names: Sequence[str | None] | None = None,
    ids: Sequence[str] | None = None,
) -> None:
    """Write :func:`points_to_geojson` atomically."""
    doc = points_to_geojson(points, scores, measurements, names, ids)
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)


def read_points_geojson(path: str | os.PathLike) -> list[Point]:
    """Read Point (and MultiPoint) features; the class comes from ``properties.classification.name``."""
    return [Point(p.x, p.y, p.label, p.id) for p in read_geojson_points(path)]


@dataclass(frozen=True)
class TablePoint:
    """A point as a table or a GeoJSON file gives it, with what else it carries.

    ``unit`` is ``"px"`` (image pixels) or ``"mm"`` (CSV ``x_mm, y_mm`` columns, as ``mitodet
    detect`` writes them); ``probability`` comes from a ``probability`` (or ``score``) column or
    the GeoJSON ``measurements``; ``image`` from an ``image`` column."""

    x: float
    y: float
    label: str = MITOTIC_FIGURE
    unit: str = "px"
    probability: float | None = None
    image: str | None = None
    id: int | None = None


def _own_area(feat: dict) -> bool:
    """A tissue outline or hotspot of detect's ``<stem>.annotations.geojson`` (not a point label)."""
    props = feat.get("properties")
    cls = props.get("classification") if isinstance(props, dict) else None
    name = cls.get("name") if isinstance(cls, dict) else None
    return feat["geometry"].get("type") in ("Polygon", "MultiPolygon") and name in (TISSUE_AREA, HOTSPOT_AREA)


def read_geojson_points(path: str | os.PathLike) -> list[TablePoint]:
    """Point and MultiPoint features of a GeoJSON file (QuPath export) in pixels, with their class
    (``properties.classification.name``; none: mitotic figure) and ``measurements.probability``."""
    path = Path(path)
    doc = read_json(path)
    if isinstance(doc, list):  # QuPath also exports a bare list of features
        features = doc
    elif isinstance(doc, dict) and doc.get("type") == "FeatureCollection" and isinstance(doc.get("features"), list):
        features = doc["features"]
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    else:
        raise MitodetError(path, "not a GeoJSON FeatureCollection")
    points = []
    for n, feat in enumerate(features):
        where = f"feature {n}: "
        if not isinstance(feat, dict) or not isinstance(feat.get("geometry"), dict):
            raise MitodetError(path, f"{where}no geometry")
        geom = feat["geometry"]
        if geom.get("type") == "Point":
            coords = [geom.get("coordinates")]
        elif geom.get("type") == "MultiPoint":
            coords = geom.get("coordinates") or []
        elif _own_area(feat):  # detect's tissue outline or hotspot, exported back from QuPath
            continue
        else:
            raise MitodetError(
                path, f"{where}geometry {geom.get('type')!r} is not a Point (export the point annotations only)"
            )
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            raise MitodetError(path, f"{where}properties is not an object")
        cls = props.get("classification")
        name = cls.get("name") if isinstance(cls, dict) else cls
        label = parse_label(name, path, where) if name else MITOTIC_FIGURE
        meas = props.get("measurements")
        prob = None
        if isinstance(meas, dict) and meas.get("probability") is not None:
            prob = _number(meas["probability"], path, f"{where}probability: ")
        fid = feat.get("id")
        for c in coords:
            if not isinstance(c, list | tuple) or len(c) < 2:
                raise MitodetError(path, f"{where}bad coordinates {c!r}")
            x, y = _number(c[0], path, where), _number(c[1], path, where)
            pid = int(fid) if isinstance(fid, int | str) and str(fid).isdigit() and len(coords) == 1 else None
            points.append(TablePoint(x, y, label, "px", prob, None, pid))
    return points


_IMAGE_COLUMNS = ("image", "file", "filename")
_SCORE_COLUMNS = ("probability", "score")


def read_point_table(path: str | os.PathLike) -> tuple[list[TablePoint], list[str]]:
    """A CSV point table: ``x_mm, y_mm`` (millimetres), else ``x_px, y_px`` or ``x, y`` (pixels);
    optional ``label``, ``probability`` (or ``score``) and ``image`` (or ``file``) columns.

    Returns (points, images): ``images`` lists the image names in order of appearance, including
    those of rows whose coordinates are empty (an image listed with no point in it). Every number
    must be finite; a bad row is a one-line error naming the file and line."""
    path = Path(path)
    points: list[TablePoint] = []
    images: list[str] = []
    with csv_errors(path):
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or []) if f is not None]
            reader.fieldnames = fields
            if "x_mm" in fields and "y_mm" in fields:
                xk, yk, unit = "x_mm", "y_mm", "mm"
            elif "x_px" in fields and "y_px" in fields:
                xk, yk, unit = "x_px", "y_px", "px"
            else:
                xk, yk, unit = "x", "y", "px"
            if xk not in fields or yk not in fields:
                raise MitodetError(
                    path,
                    "not a point table: needs columns x,y (or x_px,y_px / x_mm,y_mm), "
                    f"found {','.join(fields) or 'none'}",
                )
            ik = next((c for c in _IMAGE_COLUMNS if c in fields), None)
            sk = next((c for c in _SCORE_COLUMNS if c in fields), None)
            for n, row in enumerate(reader, start=2):
                where = f"line {n}: "
                image = (row.get(ik) or "").strip() if ik else None
                if ik and not image:
                    raise MitodetError(path, f"{where}empty {ik}")
                if image is not None and "\x00" in image:
                    raise MitodetError(path, f"{where}the {ik} name holds NUL bytes (a binary file?)")
                if image is not None and image not in images:
                    images.append(image)
                xs, ys = (row.get(xk) or "").strip(), (row.get(yk) or "").strip()
                if image is not None and not xs and not ys:
                    continue  # an image listed without points
                x, y = _number(xs, path, where), _number(ys, path, where)
                if x < 0 or y < 0:
                    raise MitodetError(path, f"{where}point ({x}, {y}) has a negative coordinate")
                label = parse_label(row["label"], path, where) if row.get("label") not in (None, "") else MITOTIC_FIGURE
                prob = _number(row[sk], path, f"{where}{sk}: ") if sk and row.get(sk) not in (None, "") else None
                points.append(TablePoint(x, y, label, unit, prob, image))
    return points, images


def read_mitoses_for(labels: str | os.PathLike, images: Sequence[Path]) -> dict[Path, list[Point]]:
    """Labelled mitoses per image: a folder of ``<stem>.csv`` / ``<stem>.geojson`` point files,
    or one CSV table with an ``image`` column (matched by path, else by file name)."""
    labels = Path(labels)
    result: dict[Path, list[Point]] = {}
    if labels.is_dir():
        readers = ((".csv", read_points_csv), (".geojson", read_points_geojson), (".json", read_points_geojson))
        for im in images:
            for suffix, reader in readers:
                f = labels / f"{im.stem}{suffix}"
                if f.is_file():
                    result[im] = [p for p in reader(f) if p.label == MITOTIC_FIGURE]
                    break
        return result
    if not labels.is_file():
        raise MitodetError(labels, "file not found")
    by_path = {im.resolve(): im for im in images}
    by_name = {im.name: im for im in images}
    with csv_errors(labels), open(labels, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        xk, yk = ("x_px", "y_px") if "x_px" in fields else ("x", "y")
        if "image" not in fields or xk not in fields or yk not in fields:
            raise MitodetError(labels, f"needs columns image,x,y[,label] (found {','.join(fields) or 'none'})")
        for n, row in enumerate(reader, start=2):
            if "\x00" in (row["image"] or ""):
                raise MitodetError(labels, f"line {n}: the image name holds NUL bytes (a binary file?)")
            ref = Path(row["image"] or "")
            ref_abs = ref if ref.is_absolute() else labels.parent / ref
            im = by_path.get(ref_abs.resolve()) or by_name.get(ref.name)
            if im is None:
                continue
            where = f"line {n}: "
            label = parse_label(row["label"], labels, where) if row.get("label") else MITOTIC_FIGURE
            if label == MITOTIC_FIGURE:
                x, y = _number(row[xk], labels, where), _number(row[yk], labels, where)
                result.setdefault(im, []).append(Point(x, y, label))
    return result
