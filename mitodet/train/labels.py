"""A lab's own labels, paired with its images by the rules of ``mitodet evaluate --truth``:
a MIDOG JSON (``{image: [[x, y, z] mm, ...]}``), a folder of per-image QuPath GeoJSON or CSV
point files (``<image>.geojson``), or one CSV table with an ``image`` column (pixels).

Points named "mitotic figure" (also "atypical mitotic figure", or unnamed) are positives;
"non-mitotic figure", "imposter" or "non-mitosis" are hard negatives (imposters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mitodet.data.midog import clamp_inside
from mitodet.errors import MitodetError
from mitodet.evaluate.sources import image_name, label_files
from mitodet.io.files import read_json
from mitodet.io.image import image_size, read_image
from mitodet.io.points import TablePoint, read_geojson_points, read_point_table
from mitodet.schema import MITOTIC_FIGURE, Point, mm_to_px


@dataclass
class LabelledImage:
    """One labelled image: its path, spacing (µm/px) and points (pixels)."""

    path: Path
    mpp: float
    points: list[Point]

    @property
    def mitoses(self) -> int:
        return sum(p.label == MITOTIC_FIGURE for p in self.points)


def _names(path: Path) -> tuple[str, ...]:
    return (path.name, path.stem)


def _truth_points(truth: Path) -> dict[str, list[TablePoint]]:
    """Every labelled point of ``truth`` by image name (points in px or mm, with labels)."""
    if truth.is_dir():
        files = label_files(truth)
        if not files:
            raise MitodetError(truth, "no label files (<image>.geojson or <image>.csv) in this folder")
        out: dict[str, list[TablePoint]] = {}
        for f in files:
            pts = read_point_table(f)[0] if f.suffix.lower() == ".csv" else read_geojson_points(f)
            out[image_name(f)] = pts
        return out
    if not truth.is_file():
        raise MitodetError(truth, "labels not found")
    if truth.suffix.lower() == ".csv":
        points, images = read_point_table(truth)
        if not images:
            raise MitodetError(truth, "a labels table needs an image column (image,x,y)")
        by: dict[str, list[TablePoint]] = {name: [] for name in images}
        for p in points:
            by[str(p.image)].append(p)
        return by
    if truth.suffix.lower() == ".geojson":
        return {image_name(truth): read_geojson_points(truth)}
    raw = read_json(truth)
    if not isinstance(raw, dict):
        raise MitodetError(truth, "expected a MIDOG JSON object {image name: points in mm}")
    out = {}
    for name, v in raw.items():
        ann = v.get("annotations") if isinstance(v, dict) else v
        if not isinstance(ann, list):
            raise MitodetError(truth, f"{name}: expected a list of points [x, y, z] in mm")
        try:
            out[name] = [TablePoint(float(p[0]), float(p[1]), MITOTIC_FIGURE, "mm") for p in ann]
        except (TypeError, ValueError, IndexError):
            raise MitodetError(truth, f"{name}: a point is not [x, y, z] in mm") from None
    return out


def _match(image: Path, by_name: dict[str, list[TablePoint]]) -> list[TablePoint] | None:
    for key in (str(image), *_names(image)):
        if key in by_name:
            return by_name[key]
    for key, pts in by_name.items():  # a table naming the image by a relative path
        if Path(key).name in _names(image):
            return pts
    return None


def lab_labels(images: list[Path], truth: Path, mpp: float | None = None) -> list[LabelledImage]:
    """The labelled images: every image must have labels (a field without mitoses: an empty
    file or a table row without coordinates), a spacing (stored, or ``mpp``), and its points
    inside it. Labels of images not given are ignored."""
    by_name = _truth_points(Path(truth))
    out = []
    for image in images:
        pts = _match(image, by_name)
        if pts is None:
            raise MitodetError(
                image, f"no labels for this image in {truth} (a field without mitoses needs an empty label file)"
            )
        if mpp is None:
            _, spacing = read_image(image, None)
            if spacing is None:
                raise MitodetError(image, "no pixel spacing stored in the file; pass --mpp")
        else:
            spacing = mpp
        w, h = image_size(image)
        points = []
        for i, p in enumerate(pts):
            x, y = (mm_to_px(p.x, spacing), mm_to_px(p.y, spacing)) if p.unit == "mm" else (p.x, p.y)
            x, y = clamp_inside(x, y, w, h, 2.0, image, f"label {i + 1}")
            points.append(Point(x, y, p.label))
        out.append(LabelledImage(image, spacing, points))
    return out


# Whole fields hold about 1-30 mitoses per mm² (the 96 MITOS-ATYPIA-14 frames: 11); images cut
# around mitoses hold far more (ICPR 2012 patches: 116, MIDOG 2021 crops: 1,100). A threshold's
# best place falls as mitoses become more common (benchmarks/bench_threshold_prevalence.py).
ENRICHED_PER_MM2 = 50.0


def mitoses_per_mm2(images: list[LabelledImage]) -> float:
    """Labelled mitotic figures per mm² of the images (their whole area)."""
    area = sum(w * h * im.mpp**2 for im in images for w, h in [image_size(im.path)]) / 1e6
    return sum(im.mitoses for im in images) / area if area else float("nan")


def prevalence_note(images: list[LabelledImage]) -> str | None:
    """A warning when the images hold mitoses far more densely than whole fields do: thresholds
    chosen on them would call too many figures on whole fields and slides."""
    density = mitoses_per_mm2(images)
    if not density > ENRICHED_PER_MM2:
        return None
    return (
        f"{density:.0f} mitoses per mm² in these images, against about 1-30 in whole fields: thresholds "
        "chosen on images cut around mitoses call too many figures on whole slides"
    )
