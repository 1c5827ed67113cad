"""What made an output, so that only an exact match is reused: the provenance record of an
input, the finished outputs and a slide's partial state read back and checked."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitodet import __version__
from mitodet.infer.detector import Detector
from mitodet.infer.inputs import Item, Options
from mitodet.io.files import parse_json
from mitodet.schema import MITOTIC_FIGURE, NON_MITOTIC, Detection, mm_to_px

PARTIAL_FORMAT = "mitodet-partial/3"


def region_key(x: int, y: int) -> str:
    return f"{x},{y}"


# -- provenance: what made an output, so that only an exact match is reused ------------------
# What each field stands for, in the note that says why an output is recomputed.
PROVENANCE_LABELS = {
    "input": "input file",
    "page": "page",
    "input_bytes": "input file",
    "input_mtime_ns": "input file",
    "input_sample_sha256": "input file",
    "models": "models",
    "device": "--device",
    "threshold": "--threshold",
    "mpp": "--mpp",
    "full_ensemble": "--full-ensemble",
    "tissue": "--tissue",
    "positives_only": "--positives-only",
    "hotspot_mm2": "--hotspot-mm2",
    "atypical": "atypical classifier (--no-atypical, --atypical-model)",
    "mitodet": "mitodet version",
}


def provenance(detectors: list[Detector], item: Item, opts: Options) -> dict[str, Any]:
    """What an input's outputs (and a slide's partial state) are made from: the input file's
    identity (path, size, modification time), page, the models (file hash, backend), device,
    effective thresholds, spacing override, the options that change the outputs, mitodet's
    version. JSON values, compared as stored."""
    st = item.path.stat()
    doc = {
        "input": str(item.path.resolve()),
        "page": item.page,
        "input_bytes": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "input_sample_sha256": sample_sha256(item.path),
        "models": [d.identity for d in detectors],
        "device": str(detectors[0].device),
        "threshold": [opts.threshold if opts.threshold is not None else d.threshold for d in detectors],
        "mpp": opts.mpp,
        "full_ensemble": opts.full,
        "tissue": opts.tissue,
        "positives_only": opts.positives_only,
        "hotspot_mm2": opts.hotspot_mm2,
        "atypical": None
        if opts.atypical is None
        else {"sha256": opts.atypical.sha256, "threshold": opts.atypical.threshold},
        "mitodet": __version__,
    }
    return json.loads(json.dumps(doc))  # as it reads back from a file


SAMPLE_BYTES = 1 << 20


def sample_sha256(path: Path) -> str:
    """SHA-256 of a file's first and last MB and its size: cheap on a 3 GB slide, and it tells a
    rewritten file of the same size and modification time from the one an output was made from."""
    import hashlib

    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as fh:
        h.update(fh.read(SAMPLE_BYTES))
        if size > SAMPLE_BYTES:
            fh.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
            h.update(fh.read(SAMPLE_BYTES))
    h.update(str(size).encode())
    return h.hexdigest()


def provenance_mismatch(stored: Any, wanted: dict[str, Any]) -> str | None:
    """None when ``stored`` equals ``wanted``; else why not, in a few words."""
    if not isinstance(stored, dict):
        return "outdated (no record of how it was made)"
    keys = [str(k) for k in wanted if stored.get(k) != wanted[k]] + [str(k) for k in stored if k not in wanted]
    if not keys:
        return None
    labels: list[str] = [PROVENANCE_LABELS.get(k, k) for k in keys]
    return f"outdated ({', '.join(dict.fromkeys(labels))} changed)"


SUMMARY_ONLY = {"hotspot_mm2"}  # options that change the summary, not the detections


def stored_detections(doc: dict, stored_prov: Any, wanted: dict[str, Any], mpp: float) -> list[Detection] | None:
    """The detections of a finished output whose provenance differs from ``wanted`` in
    :data:`SUMMARY_ONLY` options alone (so they can be summarised again without the networks);
    None otherwise, or when its points do not read back."""
    if not isinstance(stored_prov, dict) or set(stored_prov) != set(wanted):
        return None
    changed = {k for k in wanted if stored_prov.get(k) != wanted[k]}
    if not changed or not changed <= SUMMARY_ONLY:
        return None
    try:
        dets = []
        for p in doc["points"]:
            x, y = (float(v) for v in p["point"][:2])
            atyp = p.get("atypical_probability")
            dets.append(
                Detection(mm_to_px(x, mpp), mm_to_px(y, mpp), float(p["probability"]), str(p["name"]),
                          None if atyp is None else float(atyp))
            )  # fmt: skip
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return dets


@dataclass
class Reused:
    """An input whose outputs exist, made exactly as asked now: the summary stored in its JSON."""

    summary: dict | None


def read_finished(final: Path) -> dict | None:
    """A finished input's MIDOG JSON (None when unreadable or not an object)."""
    try:
        doc = parse_json(final.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # a damaged leftover is recomputed, never a traceback
        return None
    return doc if isinstance(doc, dict) else None


_REGION_KEY = re.compile(r"^\d+,\d+$")


def _valid_region(value: Any, bounds: tuple[float, float, float, float]) -> bool:
    """A stored region result: {"dets": [[x, y, probability, label], ...], "network_px": n >= 0}
    with finite coordinates inside the region's ``bounds`` (x0, y0, x1, y1 in level-0 pixels)."""
    if not isinstance(value, dict) or not isinstance(value.get("dets"), list):
        return False
    n = value.get("network_px")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return False
    x0, y0, x1, y1 = bounds
    for d in value["dets"]:
        if not isinstance(d, list) or len(d) != 4 or d[3] not in (MITOTIC_FIGURE, NON_MITOTIC):
            return False
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in d[:3]):
            return False
        if not (x0 <= d[0] < x1 and y0 <= d[1] < y1 and 0 <= d[2] <= 1):
            return False
    return True


def read_partial(
    partial: Path, wanted: dict[str, Any], bounds: dict[str, tuple[float, float, float, float]]
) -> tuple[dict, str | None]:
    """The finished regions in ``partial`` -> (regions, None), or ({}, why it is not used) when
    it is unreadable, malformed, made with other settings or holds results outside its regions."""
    try:
        doc = parse_json(partial.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError, RecursionError):
        return {}, "unreadable"
    if not isinstance(doc, dict) or doc.get("format") != PARTIAL_FORMAT or not isinstance(doc.get("regions"), dict):
        return {}, "not a mitodet partial state of this version"
    why = provenance_mismatch(doc.get("provenance"), wanted)
    if why is not None:
        return {}, why
    regions = doc["regions"]
    for key, value in regions.items():
        if not _REGION_KEY.match(key) or key not in bounds or not _valid_region(value, bounds[key]):
            return {}, f"malformed region {key[:20]!r}"
    return regions, None


def stored_number(value: Any) -> float:
    """A stored number of a summary (0 when missing or not a number)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
