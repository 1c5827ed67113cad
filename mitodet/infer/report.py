"""``<stem>.report.html``: one self-contained page per image or slide for a pathologist.

The numbers (mitotic figures, tissue area, figures per mm², hotspot), the thumbnail with the
tissue mask, the detections and the hotspot outline, a heatmap of the hotspot count (figures
within the hotspot circle centred at each point, so its maximum is the hotspot), and a gallery of
the strongest detections as crops with their probabilities. Pictures are embedded as data URIs:
the file opens anywhere, offline, and is the same bytes for the same results.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from mitodet.infer.summary import Hotspot, Summary
from mitodet.io.atomic import write_text
from mitodet.schema import Detection, logit_margin, px_to_mm, significant
from mitodet.settings import MIN_DENSITY_MM2

GALLERY = 48  # crops shown
CROP_UM = 48.0  # side of a gallery crop
# matplotlib's "magma" from 0.15 to 1 in 12 stops (no matplotlib import on the detection path)
MAGMA = np.array(
    [
        (37, 18, 85),
        (71, 16, 120),
        (101, 26, 128),
        (132, 38, 129),
        (165, 49, 126),
        (197, 60, 116),
        (227, 78, 101),
        (245, 107, 92),
        (252, 144, 101),
        (254, 182, 124),
        (253, 218, 156),
        (252, 253, 191),
    ],
    np.float32,
)


def _magma(n: int) -> np.ndarray:
    """``n`` colours (float32 RGB 0-255) along :data:`MAGMA`."""
    t = np.linspace(0, len(MAGMA) - 1, n)
    return np.stack([np.interp(t, np.arange(len(MAGMA)), MAGMA[:, c]) for c in range(3)], axis=1).astype(np.float32)


@dataclass
class Crop:
    """A gallery picture: ``pixels`` centred on ``det`` (input-image pixels)."""

    pixels: np.ndarray
    det: Detection


def _data_uri(img: np.ndarray, fmt: str = "JPEG") -> str:
    buf = io.BytesIO()
    pil = Image.fromarray(img)
    if fmt == "JPEG":
        pil.save(buf, format="JPEG", quality=88, optimize=True)
    else:
        pil.save(buf, format="PNG", optimize=True)
    mime = "jpeg" if fmt == "JPEG" else "png"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _mask_on(thumb: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``mask`` (any resolution) at the thumbnail's size, nearest neighbour."""
    h, w = thumb.shape[:2]
    if mask is None:
        return np.ones((h, w), bool)
    i = np.minimum((np.arange(h) + 0.5) * mask.shape[0] / h, mask.shape[0] - 1).astype(int)
    j = np.minimum((np.arange(w) + 0.5) * mask.shape[1] / w, mask.shape[1] - 1).astype(int)
    return mask[np.ix_(i, j)]


def tissue_picture(thumb: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """The thumbnail with everything outside the tissue mask dimmed and the mask outlined."""
    out = thumb.astype(np.float32)
    out[~tissue] = out[~tissue] * 0.35 + 255 * 0.1
    edge = tissue ^ ndi.binary_erosion(tissue, iterations=max(1, round(max(thumb.shape) / 600)))
    out[edge] = (20, 140, 255)
    return out.clip(0, 255).astype(np.uint8)


def heat_map(shape: tuple[int, int], points: np.ndarray, radius: float, grid: int = 240) -> np.ndarray:
    """Figures within ``radius`` of each pixel of a ``shape`` picture (points in its pixels), counted
    on a grid of at most ``grid`` cells a side (exact counts at the cell centres) and shown
    at the picture's size."""
    h, w = shape
    g = min(1.0, grid / max(h, w))
    gh, gw = max(1, round(h * g)), max(1, round(w * g))
    heat = np.zeros((gh, gw), np.float32)
    if len(points):
        cy = (np.arange(gh) + 0.5) / g - 0.5
        cx = (np.arange(gw) + 0.5) / g - 0.5
        centres = np.stack(np.meshgrid(cx, cy), axis=-1).reshape(-1, 2)
        counts = cKDTree(points).query_ball_point(centres, radius, return_length=True)
        heat = np.asarray(counts, np.float32).reshape(gh, gw)
    if (gh, gw) == (h, w):
        return heat
    return np.asarray(Image.fromarray(heat).resize((w, h), Image.Resampling.NEAREST))


def heat_picture(thumb: np.ndarray, tissue: np.ndarray, heat: np.ndarray) -> tuple[np.ndarray, float]:
    """Grey thumbnail with the heat map in colour (magma) where it is above zero; returns (image, max)."""
    grey = thumb.mean(axis=2, dtype=np.float32) * np.float32(0.6) + np.float32(255 * 0.4)
    grey[~tissue] = grey[~tissue] * np.float32(0.5) + np.float32(255 * 0.5)
    out = np.repeat(grey[..., None], 3, axis=2)
    top = float(heat.max())
    if top > 0:
        colours = _magma(256)
        hot = heat > 0
        lut = colours[np.clip((heat[hot] / top * 255).astype(int), 0, 255)]
        alpha = np.where(tissue[hot], np.float32(0.75), np.float32(0.35))[:, None]  # strongest on tissue
        out[hot] = out[hot] * (1 - alpha) + lut * alpha
    return out.clip(0, 255).astype(np.uint8), top


def _legend() -> str:
    stops = _magma(8)
    return ", ".join(f"rgb({int(r)},{int(g)},{int(b)})" for r, g, b in stops)


def _svg(uri: str, w: int, h: int, body: str) -> str:
    return (
        f'<svg viewBox="0 0 {w} {h}" preserveAspectRatio="xMidYMid meet" role="img">'
        f'<image href="{uri}" x="0" y="0" width="{w}" height="{h}"/>{body}</svg>'
    )


def _fmt(v, spec: str, empty: str = "–") -> str:
    return empty if v is None or v == "" else format(v, spec)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
background:#f4f4f6;color:#222}
header{background:#26262e;color:#f2f2f2;padding:14px 24px}
header h1{font-size:20px;margin:0 0 4px 0;word-break:break-all}
header p{margin:0;font-size:13px;color:#c8c8d0}
main{padding:16px 24px;max-width:1500px}
.numbers{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:16px}
.num{background:#fff;border-radius:8px;padding:10px 16px;box-shadow:0 1px 2px #0002;min-width:150px}
.num b{display:block;font-size:26px;color:#b3125a}
.num span{font-size:12px;color:#555}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
figure{margin:0;background:#fff;border-radius:8px;padding:10px;box-shadow:0 1px 2px #0002}
figure svg{width:100%;height:auto;max-height:75vh;display:block}
figcaption{font-size:12px;color:#444;margin-top:6px}
.legend{height:10px;border-radius:3px;margin-top:4px}
.scale{display:flex;justify-content:space-between;font-size:11px;color:#555}
h2{font-size:16px;margin:22px 0 8px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px}
.crop{background:#fff;border-radius:6px;padding:4px;box-shadow:0 1px 2px #0002;font-size:11px;text-align:center}
.crop img{width:100%;height:auto;display:block;border-radius:4px}
.crop.mf b{color:#b3125a}
.crop.non b{color:#777}
table{border-collapse:collapse;font-size:12px;background:#fff}
td{padding:3px 10px;border-bottom:1px solid #eee}
"""


def render_report(
    summary: Summary,
    hotspot: Hotspot | None,
    thumb: np.ndarray,
    scale: float,
    tissue: np.ndarray | None,
    dets: list[Detection],
    crops: list[Crop],
    caption: str = "",
    threshold: float | None = None,
    context: str = "",
) -> str:
    """The report page. ``thumb``: the image at ``scale`` thumbnail pixels per input pixel;
    ``tissue``: the tissue mask (any resolution, same extent) or None; ``dets`` in input pixels.

    Long because it is the HTML page itself, written out top to bottom."""
    h, w = thumb.shape[:2]
    tis = _mask_on(thumb, tissue)
    to_t = lambda v: (v + 0.5) * scale - 0.5  # noqa: E731
    mfs = [d for d in dets if d.is_mitosis]
    pts = np.array([(to_t(d.x), to_t(d.y)) for d in mfs]).reshape(-1, 2)
    stroke = max(1.5, max(w, h) / 500)
    marks = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{5 * stroke:.1f}" fill="none" stroke="#fff" '
        f'stroke-width="{2.2 * stroke:.1f}"/><circle cx="{x:.1f}" cy="{y:.1f}" r="{5 * stroke:.1f}" '
        f'fill="none" stroke="#00b7ff" stroke-width="{1.2 * stroke:.1f}"/>'
        for x, y in pts
    )
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{1.6 * stroke:.1f}" fill="#00d5ff"/>' for x, y in pts)
    ring = ""
    if hotspot is not None:
        cx, cy, r = to_t(hotspot.x), to_t(hotspot.y), hotspot.radius * scale
        ring = (
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="none" stroke="#fff" '
            f'stroke-width="{2.5 * stroke:.1f}"/><circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" '
            f'fill="none" stroke="#ff2d6f" stroke-width="{1.5 * stroke:.1f}" stroke-dasharray="{4 * stroke:.1f}"/>'
        )
    radius_t = (hotspot.radius if hotspot else math.sqrt(summary.hotspot_mm2 / math.pi) * 1000 / summary.mpp) * scale
    heat, top = heat_picture(thumb, tis, heat_map((h, w), pts, radius_t))
    fig1 = _svg(_data_uri(tissue_picture(thumb, tis)), w, h, marks + ring)
    fig2 = _svg(_data_uri(heat), w, h, dots + ring)
    s = summary
    if s.hotspot_figures is None:
        hs_text = (
            f"none: the tissue ({significant(s.tissue_mm2)} mm²) is smaller than the {s.hotspot_mm2:g} mm² hotspot "
            f"circle; {s.mitotic_figures} mitotic figure(s) in the whole specimen"
        )
    elif hotspot:
        hs_text = f"{s.hotspot_figures} at ({_fmt(s.hotspot_x_mm, '.2f')}, {_fmt(s.hotspot_y_mm, '.2f')}) mm"
    else:
        hs_text = "no mitotic figure"
    density = (
        (_fmt(s.figures_per_mm2, ".2f"), "mitotic figures per mm²")
        if s.figures_per_mm2 is not None
        else ("–", f"per mm²: not shown for less than {MIN_DENSITY_MM2:g} mm² of tissue")
    )
    hot = (
        (str(s.hotspot_figures), f"in the hotspot ({s.hotspot_mm2:g} mm² circle)")
        if s.hotspot_figures is not None
        else ("–", f"no hotspot: less tissue than its {s.hotspot_mm2:g} mm² (count: the whole specimen)")
    )
    numbers = [
        (str(s.mitotic_figures), "mitotic figure" if s.mitotic_figures == 1 else "mitotic figures"),
        (significant(s.tissue_mm2), "mm² of tissue"),
        density,
        hot,
    ]
    if s.atypical_figures is not None:
        # a share of a handful of figures is no proportion: shown from MIN_SHARE_FIGURES on
        big = s.atypical_fraction is not None and s.mitotic_figures >= MIN_SHARE_FIGURES
        share = f" ({100 * s.atypical_fraction:.0f}%)" if big and s.atypical_fraction is not None else ""
        numbers.append((f"{s.atypical_figures}{share}", "atypical mitotic figures"))
    cards = "".join(f'<div class="num"><b>{html.escape(a)}</b><span>{html.escape(b)}</span></div>' for a, b in numbers)
    tiles = []
    for k, c in enumerate(crops, 1):
        d = c.det
        cls = "mf" if d.is_mitosis else "non"
        label = "mitotic figure" if d.is_mitosis else "candidate"
        margin = logit_margin(d.probability, threshold)
        if not d.is_mitosis and margin is not None and margin >= 0 and " + " in s.models:
            label = "candidate: the other model disagrees"  # above the first threshold, not both
        if d.atypical is not None and s.atypical_threshold is not None:
            kind = "atypical" if d.atypical >= s.atypical_threshold else "normal"
            label = f"{kind} mitotic figure<br>P(atypical) {d.atypical:.2f}"
        tiles.append(
            f'<div class="crop {cls}"><img alt="detection {k}" src="{_data_uri(c.pixels)}"/>'
            f"<b>#{k} p={d.probability:.4f}</b>{_margin(d.probability, threshold)}<br>{label}<br>"
            f"({px_to_mm(d.x, s.mpp):.3f}, {px_to_mm(d.y, s.mpp):.3f}) mm</div>"
        )
    details = [
        ("input", s.input),
        ("size", f"{s.width_px} x {s.height_px} px at {s.mpp:.4g} µm/px"),
        ("tissue", f"{100 * s.tissue_fraction:.1f}% of the image"),
        ("candidates listed", str(s.candidates)),
        ("hotspot", hs_text),
        ("models", s.models),
        ("threshold", s.threshold),
    ]
    if s.atypical_threshold is not None:
        details.append(("atypical when", f"P(atypical) ≥ {s.atypical_threshold:.4f} (balanced accuracy on validation)"))
    rows = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(str(b))}</td></tr>" for a, b in details)
    name = html.escape(s.input.replace("\\", "/").rsplit("/", 1)[-1])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}: mitotic figures</title><style>{CSS}</style></head>
<body><header><h1>{name}</h1><p>{html.escape(caption)}</p><p>{html.escape(context)}</p></header><main>
<div class="numbers">{cards}</div>
<div class="figs">
<figure>{fig1}<figcaption>Tissue mask (outlined in blue; the rest dimmed), mitotic figures (blue rings) and the
hotspot (dashed: the {s.hotspot_mm2:g} mm² circle with the most figures, {html.escape(hs_text)}).</figcaption></figure>
<figure>{fig2}<figcaption>Mitotic figures within a {s.hotspot_mm2:g} mm² circle centred at each point (its maximum
is the hotspot; dots: the figures).<div class="legend" style="background:linear-gradient(to right,{_legend()})"></div>
<div class="scale"><span>0</span><span>{top:g}</span></div></figcaption></figure>
</div>
<h2>{html.escape(_gallery_title(crops, len(mfs)))} ({CROP_UM:g} µm crops, centre ringed)</h2>
<div class="gallery">{"".join(tiles)}</div>
<h2>Details</h2><table>{rows}</table>
</main></body></html>
"""


MIN_SHARE_FIGURES = 10


def _margin(p: float, threshold: float | None) -> str:
    """The score's distance from the threshold in logit units, which separates what four
    decimals of 0.999x cannot (e.g. +1.2 above, -0.4 below)."""
    m = logit_margin(p, threshold)
    return "" if m is None else f" <span title='logit(p) - logit(threshold)'>{m:+.1f}</span>"


def _gallery_title(crops: list[Crop], n_figures: int) -> str:
    shown = sum(c.det.is_mitosis for c in crops)
    title = f"Mitotic figures, strongest first ({shown} of {n_figures})"
    if len(crops) > shown:
        title += f", then the strongest {len(crops) - shown} candidates below the threshold"
    return title


def write_report(path, *args, **kwargs) -> None:
    """Write :func:`render_report` atomically to ``path``."""
    write_text(path, render_report(*args, **kwargs))


def gallery_detections(dets: list[Detection], n: int = GALLERY) -> list[Detection]:
    """The detections the gallery shows: mitotic figures first, then candidates, strongest first."""
    return sorted(dets, key=lambda d: (not d.is_mitosis, -d.probability))[:n]


def ring_crop(pixels: np.ndarray, radius_px: float) -> np.ndarray:
    """A crop with a thin ring of ``radius_px`` around its centre (the matching radius)."""
    from PIL import ImageDraw

    im = Image.fromarray(pixels)
    d = ImageDraw.Draw(im)
    c = (im.width - 1) / 2, (im.height - 1) / 2
    d.ellipse((c[0] - radius_px, c[1] - radius_px, c[0] + radius_px, c[1] + radius_px), outline=(0, 213, 255), width=2)
    return np.asarray(im)
