"""The project's shared vocabulary: labels, units, points, detections, images, datasets.

Every stage reads and writes these; nothing here imports another mitodet module
(except the error type), so any module may import it.

Coordinates are pixels of their image, x to the right, y down, the centre of pixel
(0, 0) at (0, 0). Spacings are µm per pixel ("mpp").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# -- labels -------------------------------------------------------------------------------
MITOTIC_FIGURE = "mitotic figure"
IMPOSTER = "not mitotic figure"  # MIDOG category 2 (a labelled look-alike, "hard negative")
NEGATIVE = "negative"  # a mined or otherwise known negative location (not a MIDOG category)
LABELS = (MITOTIC_FIGURE, IMPOSTER, NEGATIVE)

# How outputs name a candidate that is not called a mitotic figure (the MIDOG output wording).
NON_MITOTIC = "non-mitotic figure"
DETECTION_LABELS = (MITOTIC_FIGURE, NON_MITOTIC)
OUTPUT_NAME = {MITOTIC_FIGURE: MITOTIC_FIGURE, IMPOSTER: NON_MITOTIC, NEGATIVE: NEGATIVE}
TISSUE_AREA, HOTSPOT_AREA = "Tissue", "Hotspot"  # area classes of detect's <stem>.annotations.geojson
ATYPICAL_FIGURE = "atypical mitotic figure"  # a GeoJSON class of detect's output; reads back as a mitotic figure

# -- units --------------------------------------------------------------------------------
DEFAULT_MPP = 0.25  # µm per pixel of MIDOG-style "40x" data
MATCH_RADIUS_UM = 7.5  # official MIDOG matching radius


def um_to_px(um: float, mpp: float) -> float:
    """A length in µm as pixels of spacing ``mpp``."""
    return um / mpp


def px_to_mm(px, mpp: float):
    """Pixel coordinate(s) to millimetres (MIDOG outputs); works on floats and arrays."""
    return px * mpp / 1000.0


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, never in exponent form and never rounded to
    zero (an area of 0.0041 mm² reads 0.00410, not 0.00); 0 reads 0."""
    import math

    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def mm_to_px(mm, mpp: float):
    """Millimetres to pixel coordinate(s) of spacing ``mpp``."""
    return mm * 1000.0 / mpp


def match_radius_px(mpp: float) -> float:
    """The 7.5 µm matching radius in pixels of spacing ``mpp``."""
    return um_to_px(MATCH_RADIUS_UM, mpp)


# -- points and detections ------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One labelled location in image pixels."""

    x: float
    y: float
    label: str = MITOTIC_FIGURE
    id: int | None = None
    weight: float = 1.0  # training weight (e.g. a mitosis the panel was unsure of counts less)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"unknown label {self.label!r}; expected one of {LABELS}")


@dataclass(frozen=True)
class Detection:
    """One candidate in input-image pixels; ``label`` is the thresholded decision
    (``MITOTIC_FIGURE`` or ``NON_MITOTIC``)."""

    x: float
    y: float
    probability: float
    label: str = MITOTIC_FIGURE
    atypical: float | None = None  # P(atypical) of a mitotic figure, when the classifier ran

    @property
    def is_mitosis(self) -> bool:
        return self.label == MITOTIC_FIGURE


def logit_margin(probability: float, threshold: float | None) -> float | None:
    """``logit(p) - logit(threshold)``: how far a score lies above (or below) the threshold, in
    units that separate 0.9994 from 0.9981 (None without a threshold strictly inside (0, 1))."""
    import math

    if threshold is None or not 0 < threshold < 1:
        return None
    q = min(max(probability, 1e-9), 1 - 1e-9)
    return math.log(q / (1 - q)) - math.log(threshold / (1 - threshold))


def decide(probability: float, threshold: float) -> str:
    """The detection label of a candidate at ``threshold``."""
    return MITOTIC_FIGURE if probability >= threshold else NON_MITOTIC


def count_mitoses(dets: Iterable[Detection]) -> int:
    """Number of detections called mitotic figures."""
    return sum(d.is_mitosis for d in dets)


# -- images and datasets --------------------------------------------------------------------
@dataclass
class ImageRecord:
    """One image (or crop) with its domain and labels.

    ``labelled`` is False for images that carry no annotation at all (MIDOG 2021's
    Leica GT450 images, tissue tiles): their lack of points means "unknown", not "no mitosis".
    ``domain`` holds attributes such as ``scanner``, ``tumor_type``, ``species``, ``lab``.
    """

    id: str
    path: Path | None
    width: int | None = None
    height: int | None = None
    mpp: float | None = None
    labelled: bool = True
    domain: dict[str, str] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)

    def of(self, label: str) -> list[Point]:
        return [p for p in self.points if p.label == label]

    @property
    def mitoses(self) -> list[Point]:
        return self.of(MITOTIC_FIGURE)

    @property
    def imposters(self) -> list[Point]:
        return self.of(IMPOSTER)


@dataclass
class Dataset:
    """A named collection of images from one source."""

    name: str
    images: list[ImageRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.images)

    def by_id(self) -> dict[str, ImageRecord]:
        return {im.id: im for im in self.images}

    def count(self, label: str) -> int:
        return sum(len(im.of(label)) for im in self.images)

    def domains(self, key: str) -> Counter:
        return Counter(im.domain.get(key, "unknown") for im in self.images)

    def subset(self, ids: Iterable[str]) -> Dataset:
        keep = set(ids)
        return Dataset(self.name, [im for im in self.images if im.id in keep])
