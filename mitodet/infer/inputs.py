"""The inputs of a detection run: which files (folders listed), one item per file or stack
page with a unique output stem, what each input writes, and the options of the run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mitodet.classify.predict import AtypicalClassifier
from mitodet.errors import MitodetError
from mitodet.infer.summary import DEFAULT_HOTSPOT_MM2
from mitodet.io.image import IMAGE_SUFFIXES, image_size, tiff_stack_pages

SLIDE_SUFFIXES = {".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"}
SLIDE_MIN_PIXELS = 8192 * 8192  # larger inputs are processed by regions (memory bounded by the region)
OWN_PICTURES = (".overlay.png", ".tissue.png")  # what detect writes that a folder listing would take for inputs


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Files of the given paths; folders contribute their images and slides (sorted, not
    recursive). A file given twice (or through a folder and by name) counts once."""
    files, seen = [], set()
    for p in inputs:
        p = Path(p)
        if p.is_dir():  # a folder's images, not the pictures detect itself writes (an --out used as input)
            found = sorted(
                f
                for f in p.iterdir()
                if f.is_file()
                and f.suffix.lower() in IMAGE_SUFFIXES | SLIDE_SUFFIXES
                and not f.name.lower().endswith(OWN_PICTURES)
            )
        else:
            found = [p]  # missing files are reported (and skipped) when processed
        for f in found:
            key = f.resolve() if f.exists() else f.absolute()
            if key not in seen:
                seen.add(key)
                files.append(f)
    if not files:
        raise MitodetError(", ".join(map(str, inputs)), "no images found")
    return files


@dataclass(frozen=True)
class Item:
    """One input of a run: a file, or one page of a multi-page TIFF stack, and the stem that
    names its outputs (unique within the run)."""

    path: Path
    stem: str
    page: int | None = None  # 0-based page of a stack
    pages: int = 1

    @property
    def name(self) -> str:
        """What the user sees (and the ``input`` column of summary.csv)."""
        return str(self.path) if self.page is None else f"{self.path} [page {self.page + 1}/{self.pages}]"


def unique_stems(paths: list[Path]) -> list[str]:
    """Output stems for distinct files: the file's stem; where two share it (``img.jpg`` and
    ``img.png``, or ``a/x.jpg`` and ``b/x.jpg``; compared ignoring case, as some file systems
    do), the whole name, then as many parent folders as tell them apart (``a_x.jpg``)."""
    stems = [p.stem for p in paths]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(stems):
        groups.setdefault(s.lower(), []).append(i)
    for idx in groups.values():
        if len(idx) < 2:
            continue
        parts = [(paths[i].resolve() if paths[i].exists() else paths[i].absolute()).parts for i in idx]
        for k in range(1, max(len(p) for p in parts) + 1):
            names = ["_".join(p[-k:]).lstrip("_/") for p in parts]
            if len({n.lower() for n in names}) == len(names):
                break
        for i, n in zip(idx, names, strict=True):
            stems[i] = n
    used: set[str] = set()
    for i, s in enumerate(stems):  # a disambiguated name may meet another input's plain stem
        n, k = s, 2
        while n.lower() in used:
            n, k = f"{s}-{k}", k + 1
        used.add(n.lower())
        stems[i] = n
    return stems


def plan_items(files: list[Path]) -> list[Item]:
    """The run's inputs: one per file, one per page of a multi-page TIFF stack (outputs
    ``<stem>-page01`` ...), each with a unique output stem (:func:`unique_stems`)."""
    files = [Path(f) for f in files]
    items = []
    for path, stem in zip(files, unique_stems(files), strict=True):
        n = tiff_stack_pages(path) if path.is_file() else 1
        if n == 1:
            items.append(Item(path, stem))
        else:
            width = max(2, len(str(n)))
            items += [Item(path, f"{stem}-page{i + 1:0{width}d}", i, n) for i in range(n)]
    return items


def outputs_for(out: Path, stem: str) -> dict[str, Path]:
    return {
        k: out / f"{stem}.{k}"
        for k in (
            "mitotic-figures.json",
            "csv",
            "geojson",
            "annotations.geojson",
            "overlay.png",
            "report.html",
            "tissue.png",
        )
    }


def is_slide(path: Path) -> bool:
    if path.suffix.lower() in SLIDE_SUFFIXES:
        return True
    if path.suffix.lower() in {".tif", ".tiff"}:
        w, h = image_size(path)
        return w * h > SLIDE_MIN_PIXELS
    return False


# -- the driver ------------------------------------------------------------------------------
@dataclass
class Options:
    """What ``mitodet detect`` does with each input (besides the models)."""

    mpp: float | None = None
    threshold: float | None = None
    overlay: bool = False
    force: bool = False
    positives_only: bool = False
    full: bool = False  # run both models everywhere (all candidates of both listed)
    tissue: bool = True  # skip tiles without tissue; counts per mm² of tissue
    hotspot_mm2: float = DEFAULT_HOTSPOT_MM2
    report: bool = True
    atypical: AtypicalClassifier | None = None  # P(atypical) of every mitotic figure (None: off)
