"""Per-image outputs of ``mitodet detect``: MIDOG JSON, CSV, QuPath GeoJSON, overlay PNG."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mitodet.io.atomic import atomic_path, write_text
from mitodet.io.points import write_points_csv, write_points_geojson
from mitodet.schema import (
    ATYPICAL_FIGURE,
    HOTSPOT_AREA,
    IMPOSTER,
    MITOTIC_FIGURE,
    TISSUE_AREA,
    Detection,
    Point,
    logit_margin,
    px_to_mm,
)


def _midog_point(d: Detection, mpp: float) -> dict:
    doc = {
        "name": d.label,
        "point": [px_to_mm(d.x, mpp), px_to_mm(d.y, mpp), 0],
        "probability": round(d.probability, 6),
    }
    if d.atypical is not None:  # an extra field: MIDOG tools read name, point and probability only
        doc["atypical_probability"] = round(d.atypical, 6)
    return doc


def midog_points(dets: list[Detection], mpp: float) -> dict:
    """Grand-challenge "Multiple points" document; coordinates in millimetres (pixel centre x spacing)."""
    return {
        "name": "Points of interest",
        "type": "Multiple points",
        "points": [_midog_point(d, mpp) for d in dets],
        "version": {"major": 1, "minor": 0},
    }


def write_midog_json(path: str | Path, dets: list[Detection], mpp: float) -> None:
    write_text(path, json.dumps(midog_points(dets, mpp), indent=1) + "\n")


def _points(dets: list[Detection]) -> list[Point]:
    return [Point(d.x, d.y, MITOTIC_FIGURE if d.is_mitosis else IMPOSTER) for d in dets]


def write_csv(path: str | Path, dets: list[Detection], mpp: float, atypical: bool = False) -> None:
    """x_px, y_px, x_mm, y_mm, probability[, atypical_probability], label (``atypical``: the
    classifier ran; the column is empty for candidates that are not mitotic figures)."""
    extra = {"atypical_probability": ["" if d.atypical is None else f"{d.atypical:.6f}" for d in dets]}
    write_points_csv(
        path, _points(dets), mpp=mpp, scores=[d.probability for d in dets], extra=extra if atypical else None
    )


def feature_ids(key: str, dets: list[Detection]) -> list[str]:
    """Stable QuPath object ids: a UUID derived from the input and the point, so that a rerun
    gives every detection the id it had (and QuPath can match re-imported objects)."""
    key = _id_key(key)
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"mitodet:{key}:{d.x:.2f}:{d.y:.2f}")) for d in dets]


def _id_key(key: str) -> str:
    """``key`` as UTF-8 can hold it (a file name that is not UTF-8 too)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _area(name: str, ring: np.ndarray, color: list[int], key: str, title: str) -> dict:
    ring = np.round(np.asarray(ring, float), 2)
    coords = [[float(x), float(y)] for x, y in ring]
    if coords[0] != coords[-1]:
        coords.append(coords[0])
    first = f"{coords[0][0]:.2f}:{coords[0][1]:.2f}:{len(coords)}"
    fid = uuid.uuid5(uuid.NAMESPACE_URL, f"mitodet:{_id_key(key)}:{name}:{first}")
    return {
        "type": "Feature",
        "id": str(fid),
        "geometry": {"type": "Polygon", "coordinates": [coords]},
        "properties": {
            "objectType": "annotation",
            "name": title,
            "classification": {"name": name, "color": color},
            "isLocked": True,
        },
    }


def write_annotations_geojson(
    path: str | Path, outlines: list[np.ndarray], hotspot, hotspot_mm2: float, key: str
) -> None:
    """The tissue outline (one polygon per piece, class "Tissue") and the hotspot circle (class
    "Hotspot", named with its count) as QuPath annotation objects, locked, in input pixels;
    ``hotspot``: a :class:`~mitodet.infer.summary.Hotspot` or None (no hotspot: less tissue)."""
    features = [_area(TISSUE_AREA, ring, [120, 120, 120], key, f"tissue {i + 1}") for i, ring in enumerate(outlines)]
    if hotspot is not None:
        a = np.linspace(0, 2 * np.pi, 73)[:-1]
        circle = np.stack([hotspot.x + hotspot.radius * np.cos(a), hotspot.y + hotspot.radius * np.sin(a)], 1)
        title = f"hotspot: {hotspot.count} mitotic figure(s) in {hotspot_mm2:g} mm²"
        features.append(_area(HOTSPOT_AREA, circle, [40, 120, 240], key, title))
    write_text(path, json.dumps({"type": "FeatureCollection", "features": features}, indent=1) + "\n")


def write_geojson(
    path: str | Path, dets: list[Detection], atypical_threshold: float | None = None, key: str | None = None
) -> None:
    """QuPath-importable points with classification and a measurements dict; with the
    classifier's threshold, figures at or above it are classed "atypical mitotic figure" (their
    own colour in QuPath) and every classified figure carries an "atypical probability"."""
    names = [
        ATYPICAL_FIGURE
        if atypical_threshold is not None and d.atypical is not None and d.atypical >= atypical_threshold
        else None
        for d in dets
    ]
    meas = [{} if d.atypical is None else {"atypical probability": d.atypical} for d in dets]
    ids = feature_ids(key, dets) if key is not None else None
    write_points_geojson(
        path, _points(dets), scores=[d.probability for d in dets], measurements=meas, names=names, ids=ids
    )


def _label(p: float, threshold: float | None) -> str:
    """A figure's label: its margin over the threshold in logit units, which tells 0.9994 from
    0.9981 where three decimals print 0.999 for both; the probability without a threshold."""
    m = logit_margin(p, threshold)
    return f"{p:.3f}" if m is None else f"{m:+.1f}"


def _font(size: float):
    """DejaVu Sans (shipped inside matplotlib, a dependency): it has µ and ², which Pillow's bundled
    font draws as empty boxes; Pillow's font where matplotlib's file cannot be found."""
    size = max(10, int(size))
    try:
        import matplotlib

        path = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def place_labels(
    centres: list[tuple[float, float]], sizes: list[tuple[float, float]], r: float, image_size: tuple[int, int]
) -> list[tuple[float, float]]:
    """Top-left corners for one label per circle (centre, radius ``r``): of eight places around
    its circle, the first that stays inside the image and covers no circle and no label placed
    before it; where none is free, the one that covers least. Greedy, in the order given."""
    w_img, h_img = image_size
    circles = [(x - r, y - r, x + r, y + r) for x, y in centres]
    placed: list[tuple[float, float, float, float]] = []

    def overlap(a, b) -> float:
        return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))

    out = []
    for (x, y), (w, h) in zip(centres, sizes, strict=True):
        g = 0.75 * r  # the corner offset: the label's corner touches the circle's diagonal
        candidates = [
            (x + g, y - g - h), (x - g - w, y - g - h), (x + g, y + g), (x - g - w, y + g),
            (x + r + 2, y - h / 2), (x - r - 2 - w, y - h / 2), (x - w / 2, y - r - 2 - h), (x - w / 2, y + r + 2),
        ]  # fmt: skip
        best, best_cost = candidates[0], float("inf")
        for cx, cy in candidates:
            box = (cx, cy, cx + w, cy + h)
            outside = (w * h) * 4 if cx < 0 or cy < 0 or cx + w > w_img or cy + h > h_img else 0.0
            cost = outside + sum(overlap(box, c) for c in circles) + 2 * sum(overlap(box, p) for p in placed)
            if cost < best_cost:
                best, best_cost = (cx, cy), cost
            if cost == 0:
                break
        placed.append((best[0], best[1], best[0] + w, best[1] + h))
        out.append(best)
    return out


def write_overlay(
    path: str | Path,
    image: np.ndarray,
    dets: list[Detection],
    radius_px: float,
    max_side: int = 4096,
    title: str | None = None,
    subtitle: str | None = None,
    threshold: float | None = None,
) -> None:
    """PNG of the image (at most ``max_side`` px a side) with each mitotic figure circled at the
    matching radius and labelled with its probability, under a title bar (``title``: e.g. the image
    name; ``subtitle``: model, threshold). Candidates below the threshold are not drawn."""
    im = Image.fromarray(image)
    scale = min(1.0, max_side / max(im.size))
    if im.width < 900:  # small patches are enlarged so the captions and labels fit legibly
        scale = float(-(-900 // im.width))
        im = im.resize((im.width * int(scale), im.height * int(scale)), Image.Resampling.LANCZOS)
    elif scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(im)
    r = max(6.0, radius_px * scale)
    unit = min(2.5, max(1.0, im.width / 900))  # text grows (a little) with the picture width
    width = max(2, min(round(2 * unit), round(r / 4)))  # a ring, not a dot, even for small circles
    label_font = _font(11 * min(unit, 1.5))  # small: a label should not cover the neighbouring cells
    mfs = [d for d in dets if d.is_mitosis]
    centres = [((d.x + 0.5) * scale - 0.5, (d.y + 0.5) * scale - 0.5) for d in mfs]
    for x, y in centres:
        draw.ellipse((x - r - 1, y - r - 1, x + r + 1, y + r + 1), outline=(255, 255, 255), width=width + 2)
        draw.ellipse((x - r, y - r, x + r, y + r), outline=(230, 20, 20), width=width)
    texts = [_label(d.probability, threshold) for d in mfs]
    boxes = [draw.textbbox((0, 0), t, font=label_font, stroke_width=max(2, width)) for t in texts]
    sizes = [(b[2] - b[0], b[3] - b[1]) for b in boxes]
    for (tx, ty), text in zip(place_labels(centres, sizes, r, im.size), texts, strict=True):
        draw.text(
            (tx, ty),
            text,
            font=label_font,
            anchor="lt",
            fill=(255, 255, 255),
            stroke_width=max(2, width),
            stroke_fill=(0, 0, 0),
        )
    # title bar above the picture: name and count / models and threshold / legend
    head_font, sub_font = _font(22 * unit), _font(16 * unit)
    line1 = f"{title + '  -  ' if title else ''}{len(mfs)} mitotic figure{'s' if len(mfs) != 1 else ''}"
    lines = [(line1, head_font)]
    for part in (subtitle or "").split("   "):  # model(s) and threshold: one line each if too wide
        if not part:
            continue
        if len(lines) > 1 and draw.textlength(lines[-1][0] + "   " + part, font=sub_font) < im.width - 20 * unit:
            lines[-1] = (lines[-1][0] + "   " + part, sub_font)
        else:
            lines.append((part, sub_font))
    what = "probability" if logit_margin(0.5, threshold) is None else "logit(p) - logit(threshold)"
    lines.append((f"      mitotic figure (label: {what}), circle = 7.5 µm matching radius", sub_font))
    pad = round(6 * unit)
    heights = [draw.textbbox((0, 0), "Ag", font=f)[3] for _, f in lines]
    bar = Image.new("RGB", (im.width, int(sum(heights)) + pad * (len(lines) + 1)), (32, 32, 32))
    bd = ImageDraw.Draw(bar)
    y = pad
    for (t, f), h in zip(lines, heights, strict=False):
        bd.text((pad, y), t, font=f, fill=(240, 240, 240))
        y += h + pad
    rr = heights[-1] / 2  # legend: a sample circle in front of the last line
    cy = y - pad - rr
    bd.ellipse((pad, cy - rr, pad + 2 * rr, cy + rr), outline=(230, 20, 20), width=max(2, width))
    out = Image.new("RGB", (im.width, im.height + bar.height))
    out.paste(bar, (0, 0))
    out.paste(im, (0, bar.height))
    with atomic_path(path) as tmp:
        out.save(tmp, format="PNG")
