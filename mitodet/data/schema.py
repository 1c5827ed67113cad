"""The one in-memory model every reader fills and every stage reads.

A :class:`Dataset` is a list of :class:`ImageRecord` (one per image or crop), each
with its domain attributes and its labelled :class:`Point` s. Coordinates are
pixels of that image, x to the right, y down, the centre of pixel (0, 0) at (0, 0).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MITOTIC_FIGURE = "mitotic figure"
IMPOSTER = "not mitotic figure"  # MIDOG category 2 (hard negative); outputs say "non-mitotic figure"
NEGATIVE = "negative"  # mined or otherwise known negative location (not a MIDOG category)
LABELS = (MITOTIC_FIGURE, IMPOSTER, NEGATIVE)

DEFAULT_MPP = 0.25  # µm per pixel of MIDOG-style "40x" data
MATCH_RADIUS_UM = 7.5  # official MIDOG matching radius


@dataclass(frozen=True)
class Point:
    """One labelled location in image pixels."""

    x: float
    y: float
    label: str = MITOTIC_FIGURE
    id: int | None = None

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"unknown label {self.label!r}; expected one of {LABELS}")


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

    def __iter__(self):
        return iter(self.images)

    def by_id(self) -> dict[str, ImageRecord]:
        return {im.id: im for im in self.images}

    def count(self, label: str) -> int:
        return sum(len(im.of(label)) for im in self.images)

    def domains(self, key: str) -> Counter:
        return Counter(im.domain.get(key, "unknown") for im in self.images)

    def subset(self, ids) -> "Dataset":
        keep = set(ids)
        return Dataset(self.name, [im for im in self.images if im.id in keep])
