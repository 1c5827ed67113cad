"""Hostile files built from real pieces, and the setups that write them into a case's folder."""

from __future__ import annotations

import csv
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.reliability.harness import CROPS, DATA, GT_2025, ICPR, ICPR_MPP, PATCH, ROOT, TILE, Ctx


# -- hostile files from real pieces -------------------------------------------------------------
def real_png() -> bytes:
    return (DATA / CROPS / "images" / "MIDOG21_6.png").read_bytes()


def png_claiming(width: int, height: int) -> bytes:
    """A real 128x128 PNG whose IHDR header claims ``width x height`` (CRC fixed)."""
    b = real_png()
    assert b[12:16] == b"IHDR"
    ihdr = bytearray(b[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return b[:16] + bytes(ihdr) + crc + b[33:]


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 header claims ``width x height``."""
    b = bytearray((DATA / PATCH).read_bytes())
    i = 2
    while i < len(b):
        marker, length = b[i + 1], struct.unpack(">H", b[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            b[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(b)
        i += 2 + length
    raise RuntimeError("no SOF marker")


def tile_pixels(size: int = 256) -> np.ndarray:
    from mitodet.io.image import read_image

    return read_image(DATA / TILE, check_spacing=False)[0][:size, :size]


def write_tiff(path: Path, pixels: np.ndarray, mpp: float | None = None, **kw) -> Path:
    import tifffile

    if mpp is not None:
        kw.update(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    tifffile.imwrite(path, pixels, **kw)
    return path


def tiff_claiming(path: Path, width: int, height: int) -> Path:
    """A real strip TIFF whose ImageWidth / ImageLength tags claim ``width x height``."""
    import tifffile

    write_tiff(path, tile_pixels(64), mpp=0.25)
    b = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as t:
        tags = t.pages[0].tags
        offsets = {code: tags[code].valueoffset for code in (256, 257)}
    b[offsets[256] : offsets[256] + 4] = struct.pack("<I", width)
    b[offsets[257] : offsets[257] + 4] = struct.pack("<I", height)
    path.write_bytes(bytes(b))
    return path


def tiff_patched(path: Path, code: int, value: int, field_type: int | None = None) -> Path:
    """A real TIFF with tag ``code``'s first value (or its type) overwritten in its IFD entry."""
    write_tiff(path, tile_pixels(64), mpp=0.25)
    b = bytearray(path.read_bytes())
    off = struct.unpack("<I", b[4:8])[0]
    for i in range(struct.unpack("<H", b[off : off + 2])[0]):
        e = off + 2 + 12 * i
        if struct.unpack("<H", b[e : e + 2])[0] == code:
            if field_type is not None:
                b[e + 2 : e + 4] = struct.pack("<H", field_type)
            else:
                b[e + 8 : e + 12] = struct.pack("<I", value)
    path.write_bytes(bytes(b))
    return path


class _Evil:
    """Unpickling this writes a marker file: code run from a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_pickle(path: Path, marker: Path, where: str = "whole") -> Path:
    """A torch file that runs code when loaded without ``weights_only=True``: the whole payload,
    or hidden in an otherwise valid checkpoint (``meta``) or training state (``rng``)."""
    import torch

    if where == "whole":
        torch.save(_Evil(marker), path)
    elif where == "checkpoint":
        payload = torch.load(ROOT / "mitodet/weights/default-ca-rgb.pt", weights_only=True)
        payload["meta"]["note"] = _Evil(marker)
        torch.save(payload, path)
    elif where == "state":
        state = torch.load(path, weights_only=True)  # a real last.pt
        state["rng"]["python"]["gauss"] = _Evil(marker)
        torch.save(state, path)
    return path


def checkpoint_with(path: Path, meta: dict | None = None, config: dict | None = None, drop: str | None = None) -> Path:
    """The bundled CA-RGB checkpoint with meta/config entries replaced (or a top-level key dropped)."""
    import torch

    payload = torch.load(ROOT / "mitodet/weights/default-ca-rgb.pt", weights_only=True)
    payload["meta"].update(meta or {})
    payload["config"].update(config or {})
    if drop:
        payload.pop(drop)
    torch.save(payload, path)
    return path


def midog_doc(points: list) -> dict:
    return {"type": "Multiple points", "version": {"major": 1, "minor": 0}, "points": points}


def eval_inputs(ctx: Ctx, truth=None, pred=None, raw_truth: str | None = None, raw_pred: str | None = None) -> None:
    """truth.json and a preds/ folder with one prediction file (real 2025 example by default)."""
    real = json.loads((DATA / GT_2025 / "ground_truth.json").read_text())
    t = ctx.tmp / "truth.json"
    t.write_text(raw_truth if raw_truth is not None else json.dumps(truth if truth is not None else real))
    (ctx.tmp / "preds").mkdir(exist_ok=True)
    p = ctx.tmp / "preds" / "007.mitotic-figures.json"
    ok = [{"name": "mitotic figure", "point": [0.374850364, 0.756961752, 0], "probability": 0.9}]
    p.write_text(raw_pred if raw_pred is not None else json.dumps(midog_doc(pred if pred is not None else ok)))


def icpr_truth(ctx: Ctx, kind: str) -> Path:
    """The ICPR 2012 centroids (mitoses.csv, pixels) as users annotate them: per-image QuPath
    GeoJSON files, per-image CSVs, one CSV table with an image column (patches without mitoses
    listed with empty coordinates), or a MIDOG ground-truth JSON in mm."""
    rows = list(csv.DictReader(open(DATA / "icpr2012_patches" / "mitoses.csv", newline="")))
    images = sorted(p.name for p in (DATA / ICPR).glob("*.jpg"))
    by = {name: [(float(r["cx"]), float(r["cy"])) for r in rows if r["patch"] == name and r["cx"]] for name in images}
    if kind == "table":
        out = ctx.tmp / "truth.csv"
        with open(out, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "x", "y", "label"])
            for name, pts in by.items():
                for x, y in pts:
                    w.writerow([name, x, y, "mitotic figure"])
                if not pts:
                    w.writerow([name, "", "", ""])
        return out
    if kind == "midog":
        out = ctx.tmp / "truth.json"
        mpp = float(ICPR_MPP)
        out.write_text(
            json.dumps({name: [[x * mpp / 1000, y * mpp / 1000, 0] for x, y in pts] for name, pts in by.items()})
        )
        return out
    out = ctx.tmp / "truth"
    out.mkdir()
    for name, pts in by.items():
        stem = Path(name).stem
        if kind == "geojson":
            feats = [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [x, y]},
                    "properties": {"objectType": "annotation", "classification": {"name": "Mitosis"}},
                }
                for x, y in pts
            ]
            (out / f"{stem}.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
        else:
            (out / f"{stem}.csv").write_text("x,y\n" + "".join(f"{x},{y}\n" for x, y in pts))
    return out


def _write(name: str, content: bytes | str | Callable[[], bytes]):
    """A setup writing ``content`` to ``name``; a callable is built only when the case runs, so
    declaring the table needs no data (a clone without it still lists and skips the cases)."""

    def setup(ctx: Ctx) -> None:
        p = ctx.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        body = content() if callable(content) else content
        p.write_bytes(body if isinstance(body, bytes) else body.encode())

    return setup


def _copy(rel: str, name: str, cut: float | None = None):
    def setup(ctx: Ctx) -> None:
        b = (DATA / rel).read_bytes()
        (ctx.tmp / name).write_bytes(b if cut is None else b[: int(len(b) * cut)])

    return setup


def _image(name: str, make: Callable[[], np.ndarray], **save):
    def setup(ctx: Ctx) -> None:
        from PIL import Image

        Image.fromarray(make()).save(ctx.tmp / name, **save)

    return setup


def _rgb() -> np.ndarray:
    return tile_pixels(200)
