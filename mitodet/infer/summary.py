"""The numbers a pathologist reports per image or slide: mitotic figures, tissue area, figures
per mm², and the hotspot (the circle of a given area, 2 mm² by default, with most figures).

The hotspot is exact: the best circle can be moved until figures lie on its edge without losing
one, so it is among the circles centred on a figure or passing through two figures; all those
are counted (pairs more than a diameter apart never share a circle).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from mitodet.schema import Detection, px_to_mm
from mitodet.settings import DEFAULT_HOTSPOT_MM2, MIN_DENSITY_MM2

SUMMARY_FIELDS = [
    "input",
    "mitotic_figures",
    "candidates",
    "tissue_mm2",
    "figures_per_mm2",
    "hotspot_mm2",
    "hotspot_figures",
    "hotspot_x_mm",
    "hotspot_y_mm",
    "mpp",
    "width_px",
    "height_px",
    "tissue_fraction",
    "network_mpx",
    "models",
    "threshold",
    "atypical_figures",
    "atypical_fraction",
    "atypical_threshold",
]


@dataclass
class Hotspot:
    count: int
    x: float  # centre, pixels of the image
    y: float
    radius: float  # pixels


def hotspot(xy: np.ndarray, radius: float, weights: np.ndarray | None = None) -> Hotspot | None:
    """The circle of ``radius`` holding the most points of ``xy`` (N x 2); None without points.

    Ties go to the circle with the larger sum of ``weights`` (e.g. probabilities), then to the one
    whose centre is nearest the mean of the points it holds (so a circle larger than a cluster sits
    on it), then to the first found. Points on the edge count (within a relative 1e-9)."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    if len(xy) == 0:
        return None
    w = np.ones(len(xy)) if weights is None else np.asarray(weights, float)
    tree = cKDTree(xy)
    eps = radius * 1e-9 + 1e-12
    centres = [xy]
    pairs = tree.query_pairs(2 * radius + eps, output_type="ndarray")
    if len(pairs):
        a, b = xy[pairs[:, 0]], xy[pairs[:, 1]]
        mid, d = (a + b) / 2, b - a
        dist = np.hypot(d[:, 0], d[:, 1])
        ok = dist > 0
        h = np.sqrt(np.maximum(radius**2 - (dist[ok] / 2) ** 2, 0))
        normal = np.stack([-d[ok, 1], d[ok, 0]], axis=1) / dist[ok, None]
        centres += [mid[ok] + normal * h[:, None], mid[ok] - normal * h[:, None]]
    cands = np.concatenate(centres)
    counts = np.asarray(tree.query_ball_point(cands, radius + eps, return_length=True))
    top = np.flatnonzero(counts == counts.max())
    keys = []
    for c, hits in zip(cands[top], tree.query_ball_point(cands[top], radius + eps), strict=True):
        off = c - xy[hits].mean(axis=0)
        keys.append((-round(float(w[hits].sum()), 9), float(np.hypot(*off))))
    k = int(top[min(range(len(top)), key=lambda n: keys[n])])
    return Hotspot(int(counts[k]), float(cands[k, 0]), float(cands[k, 1]), float(radius))


def hotspot_radius_px(area_mm2: float, mpp: float) -> float:
    """Radius in pixels of a circle of ``area_mm2``."""
    return math.sqrt(area_mm2 / math.pi) * 1000.0 / mpp


@dataclass
class Summary:
    """One row of ``summary.csv`` (also stored in the image's JSON)."""

    input: str
    mitotic_figures: int
    candidates: int
    tissue_mm2: float
    figures_per_mm2: float | None
    hotspot_mm2: float
    hotspot_figures: int | None  # None: less tissue than the hotspot's area (no hotspot to speak of)
    hotspot_x_mm: float | None
    hotspot_y_mm: float | None
    mpp: float
    width_px: int
    height_px: int
    tissue_fraction: float
    network_mpx: float
    models: str
    threshold: str
    atypical_figures: int | None = None  # mitotic figures called atypical (None: the classifier did not run)
    atypical_fraction: float | None = None  # of the mitotic figures (None also when there are none)
    atypical_threshold: float | None = None

    def row(self) -> dict:
        return {k: ("" if v is None else v) for k, v in asdict(self).items()}


def summarize(
    name: str,
    dets: list[Detection],
    mpp: float,
    size: tuple[int, int],
    tissue_mm2: float,
    tissue_fraction: float,
    hotspot_mm2: float = DEFAULT_HOTSPOT_MM2,
    network_mpx: float = 0.0,
    models: str = "",
    threshold: str = "",
    atypical_threshold: float | None = None,
) -> tuple[Summary, Hotspot | None]:
    """The summary of one input's detections (pixels of spacing ``mpp``; ``size`` = (width, height));
    ``atypical_threshold``: the classifier ran, count the figures at or above it as atypical."""
    mfs = [d for d in dets if d.is_mitosis]
    has_hotspot = tissue_mm2 >= hotspot_mm2  # a 2 mm² circle in 0.6 mm² of tissue is the whole specimen
    n_atyp = None
    if atypical_threshold is not None:
        n_atyp = sum(d.atypical is not None and d.atypical >= atypical_threshold for d in mfs)
    hs = (
        hotspot(
            np.array([(d.x, d.y) for d in mfs]).reshape(-1, 2),
            hotspot_radius_px(hotspot_mm2, mpp),
            np.array([d.probability for d in mfs]),
        )
        if has_hotspot
        else None
    )
    s = Summary(
        input=name,
        mitotic_figures=len(mfs),
        candidates=len(dets),
        tissue_mm2=round(tissue_mm2, 6),
        figures_per_mm2=round(len(mfs) / tissue_mm2, 4) if tissue_mm2 >= MIN_DENSITY_MM2 else None,
        hotspot_mm2=hotspot_mm2,
        hotspot_figures=(hs.count if hs else 0) if has_hotspot else None,
        hotspot_x_mm=round(float(px_to_mm(hs.x, mpp)), 6) if hs else None,
        hotspot_y_mm=round(float(px_to_mm(hs.y, mpp)), 6) if hs else None,
        mpp=mpp,
        width_px=int(size[0]),
        height_px=int(size[1]),
        tissue_fraction=round(tissue_fraction, 6),
        network_mpx=round(network_mpx, 3),
        models=models,
        threshold=threshold,
        atypical_figures=n_atyp,
        atypical_fraction=round(n_atyp / len(mfs), 4) if n_atyp is not None and mfs else None,
        atypical_threshold=None if atypical_threshold is None else round(atypical_threshold, 4),
    )
    return s, hs
