"""Per-image outputs of ``mitodet detect``: MIDOG JSON, CSV, QuPath GeoJSON, overlay PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mitodet.data.schema import IMPOSTER, MITOTIC_FIGURE, Point
from mitodet.infer.detector import Detection
from mitodet.io.atomic import atomic_path, write_text


def midog_points(dets: list[Detection], mpp: float) -> dict:
    """Grand-challenge "Multiple points" document; coordinates in millimetres (pixel centre x spacing)."""
    return {
        "name": "Points of interest",
        "type": "Multiple points",
        "points": [
            {"name": d.label, "point": [d.x * mpp / 1000, d.y * mpp / 1000, 0], "probability": round(d.probability, 6)}
            for d in dets
        ],
        "version": {"major": 1, "minor": 0},
    }


def write_midog_json(path: str | Path, dets: list[Detection], mpp: float) -> None:
    write_text(path, json.dumps(midog_points(dets, mpp), indent=1) + "\n")


def _points(dets: list[Detection]) -> list[Point]:
    return [Point(d.x, d.y, MITOTIC_FIGURE if d.label == MITOTIC_FIGURE else IMPOSTER) for d in dets]


def write_csv(path: str | Path, dets: list[Detection], mpp: float) -> None:
    """x_px, y_px, x_mm, y_mm, probability, label."""
    from mitodet.io.points import write_points_csv

    write_points_csv(path, _points(dets), mpp=mpp, scores=[d.probability for d in dets])


def write_geojson(path: str | Path, dets: list[Detection], extra: list[dict] | None = None) -> None:
    """QuPath-importable points with classification and a measurements dict."""
    from mitodet.io.points import write_points_geojson

    write_points_geojson(path, _points(dets), scores=[d.probability for d in dets], measurements=extra)


def write_overlay(path: str | Path, image: np.ndarray, dets: list[Detection], radius_px: float,
                  max_side: int = 4096) -> None:
    """PNG of the image with mitotic figures circled (red) and their probabilities;
    non-mitotic candidates above half the threshold are not drawn to keep it legible."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(image)
    scale = min(1.0, max_side / max(im.size))
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(im)
    r = max(4.0, radius_px * scale)
    for d in dets:
        if d.label != MITOTIC_FIGURE:
            continue
        x, y = (d.x + 0.5) * scale - 0.5, (d.y + 0.5) * scale - 0.5
        draw.ellipse((x - r, y - r, x + r, y + r), outline=(255, 0, 0), width=2)
        draw.text((x + r * 0.75, y - r - 10), f"{d.probability:.2f}", fill=(255, 0, 0))
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
