"""Bad inputs and faults against the real ``mitodet`` CLI -> docs/reliability.md (issue 12).

Every case runs a command in a subprocess (``python -m mitodet ...``) in its own temporary
folder, on the real data of ../shared/data or on hostile files built from real pieces (a real
PNG whose header claims 100000 x 100000 px, the bundled checkpoint with its threshold set to
"abc", a pickle that writes a file when unpickled, ...), and checks what a person sees against
what is promised:

- bad input: exit code 2 and exactly one ``error: ...`` line on stderr naming the file or
  option (besides ``note:`` lines and detect's "N of M input(s) failed"), no traceback, no
  library chatter, nothing half-written;
- good input: exit code 0 and the expected result (checked, not assumed).

    python benchmarks/reliability.py                 # every case, 2 at a time -> docs/reliability.md
    python benchmarks/reliability.py -k bomb -k tile # the cases whose name or item contains a word
    python benchmarks/reliability.py --list          # the cases, without running them

Runs in about four minutes on 2 CPU cores (most of it is detection with the bundled models).
Each subprocess gets an address-space limit, so a case that would exhaust memory fails alone.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = Path(os.environ.get("MITODET_DATA", ROOT.parent / "shared" / "data"))
OUT_MD = ROOT / "docs" / "reliability.md"
MEMORY_LIMIT = 6 * 1024**3  # bytes of address space per command (torch alone maps ~2 GB)
NOTE = re.compile(r"^(note: |warning: |\d+ of \d+ input\(s\) failed$)")
ICPR = "icpr2012_patches/images"
PATCH = "icpr2012_patches/images/A00_01_0.jpg"  # 256x256 JPEG, ~0.2456 µm/px, one mitosis
TILE = "tissue/monuseg/TCGA-18-5592-01Z-00-DX1.tif"  # 1000x1000 TIFF, no spacing stored
CROPS = "midog21_crops"
STACK = "midog25_stack/stack_5.tiff"
SVS = "wsi/CMU-1-Small-Region.svs"
SVS_NO_MPP = "wsi/tcga-cr-7395-01a-01-ts1.svs"
GT_2025 = "formats/midog2025_t1_eval"
ICPR_MPP = "0.2456"
ITEMS = {
    "1": "1 code from files",
    "2": "2 stale results",
    "3": "3 name collisions",
    "4": "4 decompression bombs",
    "5": "5 multi-page TIFF",
    "6": "6 evaluate input",
    "7": "7 spacing and bounds",
    "8": "8 mine --labels",
    "9": "9 leftovers and noise",
    "10": "10 interface",
    "11": "11 evaluate formats",
    "0": "bad input (baseline)",
}


# -- running commands ---------------------------------------------------------------------------
@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float
    timed_out: bool = False

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    @property
    def out_lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.strip()]


def _limit_memory() -> None:  # runs in the child before exec
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(
    args: list[str],
    cwd: Path,
    timeout: float = 180,
    env: dict | None = None,
    python_args: list[str] | None = None,
    interrupt_after: float | None = None,
) -> Result:
    """``python -m mitodet ARGS`` (or ``python PYTHON_ARGS``) in ``cwd``; stdin closed, 80 columns."""
    cmd = [sys.executable, *(python_args if python_args is not None else ["-m", "mitodet", *args])]
    e = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "MITODET_DATA": str(DATA), **(env or {})}
    e.pop("PYTHONWARNINGS", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=e,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_memory,
    )
    timed_out = False
    try:
        if interrupt_after is not None:
            try:
                out, err = proc.communicate(timeout=interrupt_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=timeout)
        else:
            out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        timed_out = True
    return Result(proc.returncode, out, err, time.perf_counter() - t0, timed_out)


# -- context of a case: its folder, the data, shared prepared inputs ----------------------------
class Shared:
    """Inputs several cases need, built once (lazily, thread-safe) in one session folder."""

    def __init__(self, root: Path):
        self.root = root
        self._lock = threading.Lock()
        self._done: dict[str, Path] = {}

    def get(self, name: str, build: Callable[[Path], None]) -> Path:
        with self._lock:
            if name not in self._done:
                d = self.root / name
                d.mkdir(parents=True, exist_ok=True)
                build(d)
                self._done[name] = d
            return self._done[name]


@dataclass
class Ctx:
    tmp: Path
    shared: Shared
    vars: dict = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return DATA

    def d(self, rel: str) -> Path:
        """A real data file."""
        return DATA / rel

    def run(self, args: list[str], **kw) -> Result:
        return run_cli([str(a) for a in args], kw.pop("cwd", self.tmp), **kw)

    # shared, prepared inputs ------------------------------------------------------------------
    def tiny_run(self) -> Path:
        """A real (tiny) training run folder: config.yaml, split.json, metrics.csv, best.pt, last.pt."""
        return self.shared.get("tiny_run", _build_tiny_run)

    def icpr_preds(self) -> Path:
        """``mitodet detect`` outputs of the bundled models on the 50 ICPR 2012 patches."""
        return self.shared.get("icpr_preds", _build_icpr_preds)

    def copy_run(self) -> Path:
        run = self.tmp / "run"
        shutil.copytree(self.tiny_run() / "run", run)
        return run


def _small_crops(dest: Path, per_scanner: int = 15) -> Path:
    """A midog21_crops-format folder holding the first crops of each scanner (real PNGs copied)."""
    src = DATA / CROPS
    rows = list(csv.DictReader(open(src / "crops.csv", newline="")))
    picked, seen = [], {}
    for r in rows:
        if seen.get(r["scanner"], 0) < per_scanner:
            seen[r["scanner"]] = seen.get(r["scanner"], 0) + 1
            picked.append(r)
    (dest / "images").mkdir(parents=True, exist_ok=True)
    files = {r["file"] for r in picked}
    for f in files:
        shutil.copy(src / f, dest / f)
    with open(dest / "crops.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(picked)
    labels = list(csv.DictReader(open(src / "labels_in_crops.csv", newline="")))
    with open(dest / "labels_in_crops.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(labels[0]))
        w.writeheader()
        w.writerows([r for r in labels if r["file"] in files])
    return dest


TINY_CONFIG = """name: tiny
seed: 0
device: cpu
model: {{name: tiny}}
data: {{crops: {crops}, crop_grid: 8, border: 8}}
split: {{val_fraction: 0.3, seed: 0}}
sampling: {{batch_size: 16}}
augment: {{protocol: ca-rgb, shift: 4}}
optim: {{lr: 0.05, cycle_epochs: 2}}
train: {{epochs: 1, steps_per_epoch: 2}}
val: {{negatives: 60}}
"""


def _build_tiny_run(d: Path) -> None:
    crops = _small_crops(d / "crops")
    (d / "tiny.yaml").write_text(TINY_CONFIG.format(crops=crops))
    r = run_cli(["train", str(d / "tiny.yaml"), "--run-dir", str(d / "run"), "--quiet"], d, timeout=600)
    if r.code != 0 or not (d / "run" / "best.pt").is_file():
        raise RuntimeError(f"could not train the tiny run: {r.err[-2000:]}")


def _build_icpr_preds(d: Path) -> None:
    r = run_cli(["detect", str(DATA / ICPR), "--mpp", ICPR_MPP, "--out", str(d / "det")], d, timeout=900)
    if r.code != 0:
        raise RuntimeError(f"could not detect on the ICPR patches: {r.err[-2000:]}")


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


# -- checks ---------------------------------------------------------------------------------------
def check_error(r: Result, has: tuple[str, ...] = (), code: int = 2, lines: int = 1) -> str | None:
    """One-line error: exit ``code``, one ``error:`` line (``lines`` where a case has that many
    separate faults, each its own line) containing each of ``has``, nothing else."""
    if r.timed_out:
        return "timed out"
    if "Traceback (most recent call last)" in r.err + r.out:
        return "traceback"
    if r.code != code:
        return f"exit code {r.code}, expected {code}"
    errors = [line for line in r.err_lines if line.startswith("error: ")]
    if len(errors) != lines:
        return f"{len(errors)} error lines"
    other = [line for line in r.err_lines if not line.startswith("error: ") and not NOTE.match(line)]
    if other:
        return f"other output before/after the error: {other[0][:80]!r}"
    missing = [h for h in has if h not in errors[0]]
    return f"does not say {missing[0]!r}" if missing else None


def check_ok(r: Result) -> str | None:
    if r.timed_out:
        return "timed out"
    if "Traceback (most recent call last)" in r.err + r.out:
        return "traceback"
    if r.code != 0:
        last = r.err_lines[-1] if r.err_lines else ""
        return f"exit code {r.code}: {last[:100]}"
    return None


def no_temps(folder: Path) -> str | None:
    """Nothing half-written: no hidden temporary file of an atomic write in ``folder``."""
    from mitodet.io.atomic import temp_target

    if folder.is_dir():
        left = [p.name for p in folder.iterdir() if temp_target(p.name)]
        if left:
            return f"left {left[0]}"
    return None


def results(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.mitotic-figures.json")) if folder.is_dir() else []


def f1_of(r: Result) -> str | None:
    m = re.search(
        r"overall\s*[│|]\s*(\d+)\s*[│|]\s*(\d+)\s*[│|]\s*(\d+)\s*[│|]\s*([\d.]+)\s*[│|]\s*([\d.]+)\s*[│|]\s*([\d.]+)",
        r.out,
    )
    return m.group(6) if m else None


# -- the cases ------------------------------------------------------------------------------------
@dataclass
class Case:
    item: str
    name: str
    args: list[str] | Callable[[Ctx], list[str]]
    setup: Callable[[Ctx], None] | None = None
    expect: str = "error"  # "error": one-line error (exit ``code``); "ok": exit 0
    has: tuple[str, ...] = ()
    check: Callable[[Ctx, Result], str | None] | None = None
    code: int = 2
    lines: int = 1  # error lines expected (one per separate fault)
    timeout: float = 180
    cwd: str = "tmp"  # "tmp" or "repo"
    run: Callable[[Ctx], Result] | None = None  # a custom way of running it (python -c, signals)


CASES: list[Case] = []


def case(item: str, name: str, args, **kw) -> None:
    CASES.append(Case(item, name, args, **kw))


def _fmt(args: list[str], ctx: Ctx) -> list[str]:
    return [str(a).format(tmp=ctx.tmp, data=DATA, repo=ROOT, **ctx.vars) for a in args]


# ---- 0: the baseline of bad input (the ~100 cases the issue found to behave) --------------------
def _write(name: str, content: bytes | str):
    def setup(ctx: Ctx) -> None:
        p = ctx.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())

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


DET = ["detect", "--out", "{tmp}/out"]
case("0", "missing input file", [*DET, "{tmp}/nope.jpg", "--mpp", "0.25"], has=("nope.jpg", "not found"))
case("0", "folder without images", [*DET, "{tmp}/empty"], setup=lambda c: (c.tmp / "empty").mkdir(), has=("empty",))
case("0", "zero-byte JPEG", [*DET, "{tmp}/zero.jpg", "--mpp", "0.25"], setup=_write("zero.jpg", b""), has=("zero.jpg",))
case("0", "text file named .tif", [*DET, "{tmp}/t.tif"], setup=_write("t.tif", "hello"), has=("t.tif",))
case(
    "0",
    "truncated JPEG (half a real patch)",
    [*DET, "{tmp}/half.jpg", "--mpp", "0.25"],
    setup=_copy(PATCH, "half.jpg", 0.5),
    has=("half.jpg",),
)
case(
    "0",
    "truncated TIFF (half a real tile)",
    [*DET, "{tmp}/half.tif", "--mpp", "0.25"],
    setup=_copy(TILE, "half.tif", 0.5),
    has=("half.tif",),
)
case(
    "0",
    "PNG content named .jpg",
    [*DET, "{tmp}/png.jpg", "--mpp", "0.25"],
    setup=lambda c: (c.tmp / "png.jpg").write_bytes(real_png()),
    expect="ok",
)


def _pil(name: str, mode: str):
    def setup(ctx: Ctx) -> None:
        from PIL import Image

        Image.fromarray(_rgb()).convert(mode).save(ctx.tmp / name)

    return setup


case("0", "CMYK JPEG", [*DET, "{tmp}/cmyk.jpg", "--mpp", "0.25"], setup=_pil("cmyk.jpg", "CMYK"), has=("CMYK",))
case(
    "0",
    "16-bit PNG with values above 8 bits",
    [*DET, "{tmp}/i16.png", "--mpp", "0.25"],
    setup=_image("i16.png", lambda: _rgb()[..., 0].astype(np.uint16) * 3),
    has=("i16.png",),
)
case("0", "1-bit PNG", [*DET, "{tmp}/bw.png", "--mpp", "0.25"], setup=_pil("bw.png", "1"), has=("1-bit",))
case(
    "0",
    "PNG with varying alpha",
    [*DET, "{tmp}/rgba.png", "--mpp", "0.25"],
    setup=_image("rgba.png", lambda: np.dstack([_rgb(), np.tile(np.arange(200, dtype=np.uint8), (200, 1))])),
    has=("alpha",),
)
case(
    "0",
    "float32 TIFF",
    [*DET, "{tmp}/f.tif", "--mpp", "0.25"],
    setup=lambda c: write_tiff(c.tmp / "f.tif", _rgb().astype(np.float32)),
    has=("floating",),
)
case(
    "0",
    "grayscale PNG is read (gray repeated)",
    [*DET, "{tmp}/g.png", "--mpp", "0.25"],
    setup=_pil("g.png", "L"),
    expect="ok",
)
case("0", "palette PNG is read", [*DET, "{tmp}/p.png", "--mpp", "0.25"], setup=_pil("p.png", "P"), expect="ok")
case(
    "0",
    "PNG without --mpp",
    [*DET, "{tmp}/x.png"],
    setup=lambda c: (c.tmp / "x.png").write_bytes(real_png()),
    has=("x.png", "--mpp"),
)
case("0", "TIFF without spacing tags", [*DET, "{data}/" + TILE], has=("--mpp",))
case("0", "slide without stored spacing (SVS)", [*DET, "{data}/" + SVS_NO_MPP], has=("--mpp",))
case("0", "truncated SVS", [*DET, "{tmp}/cut.svs", "--mpp", "0.5"], setup=_copy(SVS, "cut.svs", 0.3), has=("cut.svs",))
case(
    "0",
    "random bytes named .svs",
    [*DET, "{tmp}/r.svs", "--mpp", "0.5"],
    setup=_write("r.svs", os.urandom(5000)),
    has=("r.svs",),
)
case("0", "--model file missing", [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/no.pt"], has=("no.pt",))
case(
    "0",
    "--model is a text file",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/t.pt"],
    setup=_write("t.pt", "not a model"),
    has=("t.pt",),
)
case(
    "0",
    "--model is a zip that is not a checkpoint",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/z.pt"],
    setup=lambda c: __import__("zipfile").ZipFile(c.tmp / "z.pt", "w").writestr("a.txt", "x"),
    has=("z.pt",),
)
case("0", "--model is a folder", [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}"], has=("not found",))
case(
    "0",
    "three --model",
    [
        *DET,
        "{data}/" + PATCH,
        "--mpp",
        "0.25",
        "-m",
        "{repo}/mitodet/weights/default-ca-rgb.pt",
        "-m",
        "{repo}/mitodet/weights/default-ca-rgb.pt",
        "-m",
        "{repo}/mitodet/weights/default-ca-od.pt",
    ],
    has=("two",),
)
case(
    "0",
    "truncated checkpoint",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "-m", "{tmp}/cut.pt"],
    setup=lambda c: (c.tmp / "cut.pt").write_bytes((ROOT / "mitodet/weights/default-ca-rgb.pt").read_bytes()[:50000]),
    has=("cut.pt",),
)
case(
    "0",
    "--grand-challenge without an image",
    ["detect", "--grand-challenge", "--gc-input", "{tmp}/in", "--gc-output", "{tmp}/o"],
    setup=lambda c: (c.tmp / "in" / "images").mkdir(parents=True),
    has=("exactly one",),
)
case("0", "no input and no --grand-challenge", ["detect"], has=("INPUT",))
case("0", "data stats: missing file", ["data", "stats", "{tmp}/nope.json"], has=("nope.json",))
case(
    "0",
    "data stats: invalid JSON",
    ["data", "stats", "{tmp}/bad.json"],
    setup=_write("bad.json", "{not json"),
    has=("bad.json",),
)
case(
    "0",
    "data stats: truncated MIDOG.json",
    ["data", "stats", "{tmp}/MIDOG.json"],
    setup=_copy("annotations/MIDOG.json", "MIDOG.json", 0.5),
    has=("MIDOG.json",),
)
case(
    "0",
    "data stats: foreign JSON",
    ["data", "stats", "{tmp}/f.json"],
    setup=_write("f.json", '{"a": [1, 2]}'),
    has=("f.json",),
)
case(
    "0",
    "data stats: unknown --by key",
    ["data", "stats", "{data}/annotations/MIDOG.json", "--by", "colour"],
    has=("colour",),
)
case(
    "0",
    "data image: PNG without --mpp",
    ["data", "image", "{tmp}/x.png"],
    setup=lambda c: (c.tmp / "x.png").write_bytes(real_png()),
    has=("--mpp",),
)
case(
    "0",
    "evaluate: truth file missing",
    ["evaluate", "-t", "{tmp}/nope.json", "-p", "{tmp}", "-o", "{tmp}/ev"],
    has=("nope.json",),
)
case(
    "0",
    "evaluate: truth not JSON",
    ["evaluate", "-t", "{tmp}/truth.json", "-p", "{tmp}/preds", "-o", "{tmp}/ev"],
    setup=lambda c: eval_inputs(c, raw_truth="{oops"),
    has=("truth.json",),
)
case(
    "0",
    "evaluate: pixels in --strict",
    [
        "evaluate",
        "-t",
        "{data}/" + GT_2025 + "/ground_truth.json",
        "-p",
        "{data}/" + GT_2025 + "/predictions.json",
        "-o",
        "{tmp}/ev",
        "--strict",
    ],
    has=("millimetres",),
)
case(
    "0",
    "stain unmix: image without tissue",
    ["stain", "unmix", "{tmp}/white.png", "--out", "{tmp}/u"],
    setup=_image("white.png", lambda: np.full((200, 200, 3), 250, np.uint8)),
    has=("white.png",),
)
case("0", "stain vectors: missing file", ["stain", "vectors", "{tmp}/nope.tif"], has=("nope.tif",))
case("0", "train: config missing", ["train", "{tmp}/nope.yaml"], has=("nope.yaml",))
case(
    "0",
    "train: config not YAML",
    ["train", "{tmp}/bad.yaml"],
    setup=_write("bad.yaml", "a: [1, 2\n"),
    has=("bad.yaml",),
)
case(
    "0",
    "train: unknown setting",
    ["train", "{tmp}/c.yaml"],
    setup=_write("c.yaml", "name: x\nbanana: 1\n"),
    has=("banana",),
)
case("0", "train --resume of a folder that is not a run", ["train", "--resume", "{tmp}"], has=("config.yaml",))
case("0", "calibrate: not a run folder", ["calibrate", "{tmp}"], has=("not a run folder",))
case("0", "mine hard: not a run folder", ["mine", "hard", "{tmp}"], has=("not a finished training run",))
case("0", "model summary: unknown name", ["model", "summary", "banana"], has=("banana",))
case("0", "model check: image missing", ["model", "check", "fast", "--image", "{tmp}/nope.png"], has=("nope.png",))
case(
    "0",
    "augment preview: unknown protocol",
    ["augment", "preview", "--protocol", "rgb", "--out", "{tmp}/p.png"],
    cwd="repo",
    has=("--protocol",),
)


# ---- 1: no code runs from a file ------------------------------------------------------------------
def _evil_check(ctx: Ctx, r: Result) -> str | None:
    return "the pickle ran code (marker file written)" if (ctx.tmp / "MARKER").exists() else None


def _evil(name: str = "evil.pt", where: str = "whole"):
    def setup(ctx: Ctx) -> None:
        evil_pickle(ctx.tmp / name, ctx.tmp / "MARKER", where)

    return setup


def _evil_run(filename: str, where: str = "whole"):
    def setup(ctx: Ctx) -> None:
        run = ctx.copy_run()
        if where == "state":
            evil_pickle(run / filename, ctx.tmp / "MARKER", "state")
        else:
            evil_pickle(run / filename, ctx.tmp / "MARKER", where)

    return setup


E1 = dict(check=_evil_check)
case(
    "1",
    "detect --model: pickle with code",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/evil.pt"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "detect --model: code hidden in a valid checkpoint's meta",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--model", "{tmp}/evil.pt"],
    setup=_evil(where="checkpoint"),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "detect --model as the second of a pair",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "-m", "{repo}/mitodet/weights/default-ca-rgb.pt", "-m", "{tmp}/evil.pt"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "detect --backend onnx --model: pickle with code",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--backend", "onnx", "--model", "{tmp}/evil.pt"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "train --resume: last.pt with code",
    ["train", "--resume", "{tmp}/run"],
    setup=_evil_run("last.pt"),
    has=("last.pt",),
    **E1,
)
case(
    "1",
    "train --resume: code hidden in last.pt's RNG state",
    ["train", "--resume", "{tmp}/run"],
    setup=_evil_run("last.pt", "state"),
    has=("last.pt",),
    **E1,
)
case(
    "1",
    "train: model.init with code",
    lambda c: [
        "train",
        str(c.tiny_run() / "tiny.yaml"),
        "--set",
        f"model.init={c.tmp / 'evil.pt'}",
        "--run-dir",
        str(c.tmp / "r"),
    ],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "mine hard: best.pt with code",
    ["mine", "hard", "{tmp}/run", "--rounds", "1"],
    setup=_evil_run("best.pt"),
    has=("best.pt",),
    **E1,
)
case(
    "1", "calibrate: best.pt with code", ["calibrate", "{tmp}/run"], setup=_evil_run("best.pt"), has=("best.pt",), **E1
)
case(
    "1",
    "calibrate --checkpoint with code",
    lambda c: ["calibrate", str(c.tiny_run() / "run"), "--checkpoint", str(c.tmp / "evil.pt"), "--dry-run"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1",
    "model export: pickle with code",
    ["model", "export", "{tmp}/evil.pt", "--onnx", "{tmp}/m.onnx"],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)
case(
    "1", "model summary: pickle with code", ["model", "summary", "{tmp}/evil.pt"], setup=_evil(), has=("evil.pt",), **E1
)
case(
    "1",
    "model check: pickle with code",
    ["model", "check", "{tmp}/evil.pt", "--image", "{data}/" + PATCH],
    setup=_evil(),
    has=("evil.pt",),
    **E1,
)


# ---- 2: stale or mixed results -----------------------------------------------------------------
def _first_detect(*extra: str):
    def setup(ctx: Ctx) -> None:
        r = ctx.run(["detect", DATA / PATCH, "--mpp", "0.25", "--out", ctx.tmp / "out", *extra])
        if r.code != 0:
            raise RuntimeError(r.err)

    return setup


def _recomputed(ctx: Ctx, r: Result) -> str | None:
    return "old result reused (skipped)" if "skipped (done" in r.out + r.err else None


case(
    "2",
    "rerun with another --threshold",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--threshold", "0.99"],
    setup=_first_detect(),
    expect="ok",
    check=_recomputed,
)
case(
    "2",
    "rerun with another --mpp",
    [*DET, "{data}/" + PATCH, "--mpp", "0.3"],
    setup=_first_detect(),
    expect="ok",
    check=_recomputed,
)
case(
    "2",
    "rerun with another model",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "-m", "{repo}/mitodet/weights/default-ca-od.pt"],
    setup=_first_detect(),
    expect="ok",
    check=_recomputed,
)
case(
    "2",
    "rerun with another backend",
    [*DET, "{data}/" + PATCH, "--mpp", "0.25", "--backend", "torch"],
    setup=_first_detect(),
    expect="ok",
    check=_recomputed,
)


def _changed_input(ctx: Ctx) -> None:
    shutil.copy(DATA / PATCH, ctx.tmp / "img.jpg")
    ctx.run(["detect", ctx.tmp / "img.jpg", "--mpp", "0.25", "--out", ctx.tmp / "out"])
    shutil.copy(DATA / ICPR / "A00_02_0.jpg", ctx.tmp / "img.jpg")


case(
    "2",
    "rerun after the input file changed",
    [*DET, "{tmp}/img.jpg", "--mpp", "0.25"],
    setup=_changed_input,
    expect="ok",
    check=_recomputed,
)


def _slide_partial(content: str):
    def setup(ctx: Ctx) -> None:
        (ctx.tmp / "out").mkdir()
        (ctx.tmp / "out" / "CMU-1-Small-Region.partial.json").write_text(content)

    return setup


def _no_planted(ctx: Ctx, r: Result) -> str | None:
    f = ctx.tmp / "out" / "CMU-1-Small-Region.csv"
    if f.is_file() and "4242.00" in f.read_text():
        return "planted partial state trusted (a fake detection in the result)"
    return None


# the slide read as if at 0.1 µm/px: 888x1187 px at the model's 0.25, one region, seconds to detect
SLIDE = [*DET, "{data}/" + SVS, "--mpp", "0.1", "-m", "{repo}/mitodet/weights/default-ca-rgb.pt"]
case(
    "2",
    "planted *.partial.json of a slide is trusted",
    SLIDE,
    setup=_slide_partial('{"0,0": [[4242, 1000, 0.99, "mitotic figure"]]}'),
    expect="ok",
    check=_no_planted,
    timeout=300,
)
case("2", "malformed *.partial.json (a list)", SLIDE, setup=_slide_partial("[1, 2, 3]"), expect="ok", timeout=300)
case(
    "2",
    "malformed *.partial.json (bad region values)",
    SLIDE,
    setup=_slide_partial('{"0,0": [["x"]]}'),
    expect="ok",
    timeout=300,
)


# ---- 3: output name collisions -----------------------------------------------------------------
def _two(*names: tuple[str, str]):
    def setup(ctx: Ctx) -> None:
        for rel, name in names:
            p = ctx.tmp / "in" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(DATA / rel, p)

    return setup


def _outputs(n: int):
    def check(ctx: Ctx, r: Result) -> str | None:
        got = len(results(ctx.tmp / "out"))
        if "skipped (done" in r.out:
            return "second input reported as skipped"
        return None if got == n else f"{got} result file(s) for {n} inputs"

    return check


case(
    "3",
    "a/x.jpg and b/x.jpg in one run",
    [*DET, "{tmp}/in/a/x.jpg", "{tmp}/in/b/x.jpg", "--mpp", "0.25"],
    setup=_two((PATCH, "a/x.jpg"), (ICPR + "/A00_02_0.jpg", "b/x.jpg")),
    expect="ok",
    check=_outputs(2),
)
case(
    "3",
    "img.jpg and img.png in one folder",
    [*DET, "{tmp}/in", "--mpp", "0.25"],
    setup=lambda c: (_two((PATCH, "img.jpg"))(c), (c.tmp / "in" / "img.png").write_bytes(real_png())),
    expect="ok",
    check=_outputs(2),
)


def _tif_and_tiff(ctx: Ctx) -> None:
    (ctx.tmp / "in").mkdir()
    write_tiff(ctx.tmp / "in" / "x.tif", _rgb())
    write_tiff(ctx.tmp / "in" / "x.tiff", _rgb()[::-1].copy())


case(
    "3",
    "x.tif and x.tiff in one folder",
    [*DET, "{tmp}/in", "--mpp", "0.25"],
    setup=_tif_and_tiff,
    expect="ok",
    check=_outputs(2),
)


# ---- 4: decompression bombs and huge images ------------------------------------------------------
def _bomb(name: str = "bomb.png", w: int = 100_000, h: int = 100_000):
    return _write(name, png_claiming(w, h))


case(
    "4",
    "PNG header claiming 100000x100000 px",
    [*DET, "{tmp}/bomb.png", "--mpp", "0.25"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)


def _bomb_folder(ctx: Ctx) -> None:
    (ctx.tmp / "in").mkdir()
    (ctx.tmp / "in" / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    shutil.copy(DATA / PATCH, ctx.tmp / "in" / "a.jpg")


def _bomb_folder_check(ctx: Ctx, r: Result) -> str | None:
    if not (ctx.tmp / "out" / "a.mitotic-figures.json").is_file():
        return "the good file was not done"
    return None if any("a.jpg" in line for line in r.out_lines) else "no result line for the good file"


case(
    "4",
    "folder with a bomb and a good image: the good one is done",
    [*DET, "{tmp}/in", "--mpp", "0.25"],
    setup=_bomb_folder,
    has=("bomb.png",),
    check=_bomb_folder_check,
)
case(
    "4",
    "PNG header just above the limit (12000x12001): no Pillow warning",
    [*DET, "{tmp}/big.png", "--mpp", "0.25"],
    setup=_bomb("big.png", 12000, 12001),
    has=("big.png", "too large"),
)
case(
    "4",
    "PNG header at the limit (12000x12000), truncated data",
    [*DET, "{tmp}/edge.png", "--mpp", "0.25"],
    setup=_bomb("edge.png", 12000, 12000),
    has=("edge.png",),
)


def _real_12k(ctx: Ctx) -> None:
    from PIL import Image

    tile = tile_pixels(1000)
    Image.fromarray(np.tile(tile, (12, 12, 1))).save(ctx.tmp / "real12k.png", compress_level=1)


def _no_pillow_warning(ctx: Ctx, r: Result) -> str | None:
    return "Pillow's warning shown" if "DecompressionBomb" in r.err else None


case(
    "4",
    "real 12000x12000 PNG: read without Pillow's warning",
    ["data", "image", "{tmp}/real12k.png", "--mpp", "0.25"],
    setup=_real_12k,
    expect="ok",
    check=_no_pillow_warning,
    timeout=300,
)
case(
    "4",
    "JPEG header claiming 60000x60000 px",
    [*DET, "{tmp}/bomb.jpg", "--mpp", "0.25"],
    setup=_write("bomb.jpg", jpeg_claiming(60000, 60000)),
    has=("bomb.jpg", "too large"),
)
case(
    "4",
    "TIFF header claiming 100000x100000 px",
    [*DET, "{tmp}/bomb.tif"],
    setup=lambda c: tiff_claiming(c.tmp / "bomb.tif", 100_000, 100_000),
    has=("bomb.tif",),
)
case(
    "4",
    "TIFF header claiming 12001x12000 px (read whole)",
    ["stain", "vectors", "{tmp}/bomb.tif"],
    setup=lambda c: tiff_claiming(c.tmp / "bomb.tif", 12001, 12000),
    has=("bomb.tif",),
)
case(
    "4", "stain vectors: PNG bomb", ["stain", "vectors", "{tmp}/bomb.png"], setup=_bomb(), has=("bomb.png", "too large")
)
case(
    "4",
    "stain unmix: PNG bomb",
    ["stain", "unmix", "{tmp}/bomb.png", "--out", "{tmp}/u"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)
case(
    "4",
    "mine residual: PNG bomb",
    ["mine", "residual", "{tmp}/bomb.png", "--mpp", "0.25", "--out", "{tmp}/n.csv"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)
case(
    "4",
    "model check: PNG bomb",
    ["model", "check", "fast", "--image", "{tmp}/bomb.png"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)
case(
    "4",
    "data image: PNG bomb",
    ["data", "image", "{tmp}/bomb.png", "--mpp", "0.25"],
    setup=_bomb(),
    has=("bomb.png", "too large"),
)
case(
    "4",
    "grand-challenge mode: TIFF bomb",
    ["detect", "--grand-challenge", "--gc-input", "{tmp}/in", "--gc-output", "{tmp}/o"],
    setup=lambda c: (
        (c.tmp / "in" / "images").mkdir(parents=True),
        tiff_claiming(c.tmp / "in" / "images" / "x.tif", 100_000, 100_000),
    ),
    has=("x.tif",),
)


# ---- 5: multi-page TIFF in detect ----------------------------------------------------------------
def _pages_handled(ctx: Ctx, r: Result) -> str | None:
    n = len(results(ctx.tmp / "out"))
    if r.code == 2 and len([line for line in r.err_lines if line.startswith("error:")]) == 1:
        return None  # refused in one line
    return None if n >= 16 else f"{n} result(s) for 16 pages, with no word about the other pages"


case("5", "16-page TIFF stack", [*DET, "{data}/" + STACK], expect="ok", check=_pages_handled, code=0)
case(
    "5",
    "16-page TIFF stack in a folder",
    [*DET, "{tmp}/in"],
    setup=lambda c: ((c.tmp / "in").mkdir(), shutil.copy(DATA / STACK, c.tmp / "in")),
    expect="ok",
    check=_pages_handled,
)

# ---- 6: evaluate checks its input ---------------------------------------------------------------
EV = ["evaluate", "-t", "{tmp}/truth.json", "-p", "{tmp}/preds", "-o", "{tmp}/ev"]
GOOD_PT = {"name": "mitotic figure", "point": [0.37, 0.75, 0], "probability": 0.9}
REAL_TRUTH = {"007.tiff": [[0.374850364, 0.756961752, 0]]}
case(
    "6",
    "truth: NaN coordinate",
    EV,
    setup=lambda c: eval_inputs(c, raw_truth='{"007.tiff": [[NaN, 0.75, 0]]}'),
    has=("truth.json", "finite"),
)
case(
    "6",
    "truth: string coordinate",
    EV,
    setup=lambda c: eval_inputs(c, truth={"007.tiff": [["0.3", 0.75, 0]]}),
    has=("truth.json",),
)
case(
    "6",
    "truth: a point that is a number",
    EV,
    setup=lambda c: eval_inputs(c, truth={"007.tiff": [5]}),
    has=("truth.json",),
)
case(
    "6",
    "truth: Infinity coordinate (2025 form)",
    EV,
    setup=lambda c: eval_inputs(c, raw_truth='{"007.tiff": {"annotations": [[Infinity, 0.7, 0]]}}'),
    has=("truth.json",),
)
case(
    "6",
    "truth: annotations not a list",
    EV,
    setup=lambda c: eval_inputs(c, truth={"007.tiff": {"annotations": 3}}),
    has=("truth.json",),
)
case("6", "truth: empty object", EV, setup=lambda c: eval_inputs(c, truth={}), has=("truth.json", "no images"))
case("6", "truth: a JSON list", EV, setup=lambda c: eval_inputs(c, truth=[1, 2]), has=("truth.json",))
case(
    "6",
    "truth: binary file",
    ["evaluate", "-t", "{tmp}/t.json", "-p", "{tmp}", "-o", "{tmp}/ev"],
    setup=lambda c: (c.tmp / "t.json").write_bytes(real_png()),
    has=("t.json",),
)
case(
    "6",
    "pred: NaN probability",
    EV,
    setup=lambda c: eval_inputs(
        c, truth=REAL_TRUTH, raw_pred=json.dumps(midog_doc([{**GOOD_PT, "probability": 0.5}])).replace("0.5", "NaN")
    ),
    has=("007.mitotic-figures.json", "probability"),
)
case(
    "6",
    "pred: string probability",
    EV,
    setup=lambda c: eval_inputs(c, truth=REAL_TRUTH, pred=[{**GOOD_PT, "probability": "high"}]),
    has=("probability",),
)
case(
    "6",
    "pred: string coordinate",
    EV,
    setup=lambda c: eval_inputs(c, truth=REAL_TRUTH, pred=[{**GOOD_PT, "point": ["0.3", 0.7, 0]}]),
    has=("007.mitotic-figures.json",),
)
case(
    "6",
    "pred: NaN coordinate",
    EV,
    setup=lambda c: eval_inputs(
        c, truth=REAL_TRUTH, raw_pred=json.dumps(midog_doc([{**GOOD_PT, "point": [0.5, 0.7, 0]}])).replace("0.5", "NaN")
    ),
    has=("007.mitotic-figures.json",),
)
case(
    "6",
    "pred: empty point []",
    EV,
    setup=lambda c: eval_inputs(c, truth=REAL_TRUTH, pred=[{**GOOD_PT, "point": []}]),
    has=("007.mitotic-figures.json",),
)
case(
    "6",
    "pred: point is a string",
    EV,
    setup=lambda c: eval_inputs(c, truth=REAL_TRUTH, pred=[{**GOOD_PT, "point": "0.3,0.7"}]),
    has=("007.mitotic-figures.json",),
)
case(
    "6",
    "pred: points is not a list",
    EV,
    setup=lambda c: eval_inputs(c, truth=REAL_TRUTH, raw_pred='{"type": "Multiple points", "points": 7}'),
    has=("points",),
)
case(
    "6",
    "pred: binary file",
    EV,
    setup=lambda c: (
        eval_inputs(c, truth=REAL_TRUTH),
        (c.tmp / "preds" / "007.mitotic-figures.json").write_bytes(real_png()),
    ),
    has=("007.mitotic-figures.json",),
)


def _renamed(ctx: Ctx) -> None:
    eval_inputs(ctx, truth=REAL_TRUTH)
    (ctx.tmp / "preds" / "007.mitotic-figures.json").rename(ctx.tmp / "preds" / "case7.mitotic-figures.json")


case("6", "names of truth and predictions do not match", EV, setup=_renamed, has=("match",))


def _gc_renamed(ctx: Ctx) -> None:
    shutil.copytree(DATA / GT_2025, ctx.tmp / "gc")
    t = json.loads((ctx.tmp / "gc" / "ground_truth.json").read_text())
    (ctx.tmp / "gc" / "ground_truth.json").write_text(json.dumps({f"x{k}": v for k, v in t.items()}))


case(
    "6",
    "grand-challenge predictions.json with other image names",
    ["evaluate", "-t", "{tmp}/gc/ground_truth.json", "-p", "{tmp}/gc/predictions.json", "-o", "{tmp}/ev"],
    setup=_gc_renamed,
    has=("ground truth",),
)


def _partial_names(ctx: Ctx) -> None:
    eval_inputs(ctx, truth={"007.tiff": [[0.37, 0.75, 0]], "008.tiff": [[0.1, 0.1, 0]]})
    (ctx.tmp / "preds" / "999.mitotic-figures.json").write_text(json.dumps(midog_doc([GOOD_PT])))


def _warned(*words: str):
    def check(ctx: Ctx, r: Result) -> str | None:
        warn = " ".join(line for line in r.err_lines if line.startswith("warning:"))
        missing = [w for w in words if w not in warn]
        return f"no warning naming {missing[0]!r}" if missing else None

    return check


case(
    "6",
    "some images without predictions, a prediction without truth: warned",
    EV,
    setup=_partial_names,
    expect="ok",
    check=_warned("008.tiff", "999.mitotic-figures.json"),
)
case(
    "6",
    "unknown point name ('Mitotic Figure'): warned, not silently negative",
    EV,
    setup=lambda c: eval_inputs(c, truth=REAL_TRUTH, pred=[{**GOOD_PT, "name": "Mitotic Figure"}]),
    expect="ok",
    check=_warned("Mitotic Figure"),
)
case(
    "6",
    "predictions folder without prediction files",
    EV,
    setup=lambda c: (eval_inputs(c, truth=REAL_TRUTH), (c.tmp / "preds" / "007.mitotic-figures.json").unlink()),
    has=("no prediction files",),
)
case(
    "6",
    "--out is a file",
    [*EV[:-1], "{tmp}/afile"],
    setup=lambda c: (eval_inputs(c, truth=REAL_TRUTH), (c.tmp / "afile").write_text("x")),
    has=("afile",),
)
case(
    "6",
    "--out below a file",
    [*EV[:-1], "{tmp}/afile/sub"],
    setup=lambda c: (eval_inputs(c, truth=REAL_TRUTH), (c.tmp / "afile").write_text("x")),
    has=("afile",),
)
case(
    "6",
    "--out in a read-only place (/sys)",
    [*EV[:-1], "/sys/mitodet-eval"],
    setup=lambda c: eval_inputs(c, truth=REAL_TRUTH),
    has=("/sys/mitodet-eval",),
)
case(
    "6",
    "data split --out is a folder",
    ["data", "split", "{data}/annotations/MIDOG.json", "--out", "{tmp}"],
    has=("--out",),
)
case(
    "6",
    "data split --out below a file",
    ["data", "split", "{data}/annotations/MIDOG.json", "--out", "{tmp}/afile/s.json"],
    setup=_write("afile", "x"),
    has=("afile",),
)
case(
    "6",
    "data split --out in a read-only place (/sys)",
    ["data", "split", "{data}/annotations/MIDOG.json", "--out", "/sys/split.json"],
    has=("/sys/split.json",),
)


def _table_uncut(ctx: Ctx, r: Result) -> str | None:
    return "numbers cut with …" if "…" in r.out else (None if "0.4615" in r.out else "F1 0.4615 not shown whole")


case(
    "6",
    "evaluate table in a pipe at 80 columns: numbers whole",
    [
        "evaluate",
        "-t",
        "{data}/" + GT_2025 + "/ground_truth.json",
        "-p",
        "{data}/" + GT_2025 + "/predictions.json",
        "-o",
        "{tmp}/ev",
    ],
    expect="ok",
    check=_table_uncut,
)

# ---- 7: spacing and option bounds ----------------------------------------------------------------
P = [*DET, "{data}/" + PATCH]
for value in ("1e-9", "0", "-1", "nan", "inf", "50", "1e9"):
    case("7", f"detect --mpp {value}", [*P, "--mpp", value], has=("--mpp",))
case("7", "detect --mpp abc", [*P, "--mpp", "abc"], has=("--mpp",))
case("7", "detect --mpp 20 (x80 upsampling beyond the memory limit)", [*P, "--mpp", "20"], has=("limit",))
case(
    "7",
    "TIFF tag meaning 2.5e-6 µm/px",
    [*DET, "{tmp}/tiny.tif"],
    setup=lambda c: write_tiff(c.tmp / "tiny.tif", _rgb(), mpp=2.5e-6),
    has=("tiny.tif", "not plausible"),
)
case(
    "7",
    "TIFF tag meaning 30 µm/px",
    [*DET, "{tmp}/coarse.tif"],
    setup=lambda c: write_tiff(c.tmp / "coarse.tif", _rgb(), mpp=30),
    has=("coarse.tif", "not plausible"),
)
case(
    "7",
    "TIFF tag 72 dpi (placeholder): asks for --mpp",
    [*DET, "{tmp}/dpi.tif"],
    setup=lambda c: write_tiff(c.tmp / "dpi.tif", _rgb(), resolution=(72, 72), resolutionunit="INCH"),
    has=("dpi.tif", "--mpp"),
)
case(
    "7",
    "TIFF tag 2.5e-6 µm/px overridden by --mpp",
    [*DET, "{tmp}/tiny.tif", "--mpp", "0.25"],
    setup=lambda c: write_tiff(c.tmp / "tiny.tif", _rgb(), mpp=2.5e-6),
    expect="ok",
)
case(
    "7",
    "TIFF with an invalid resolution tag type",
    [*DET, "{tmp}/badtype.tif"],
    setup=lambda c: tiff_patched(c.tmp / "badtype.tif", 282, 0, field_type=99),
    has=("badtype.tif", "--mpp"),
)
case("7", "slide with --mpp 1e-9", ["data", "image", "{data}/" + SVS, "--mpp", "1e-9"], has=("--mpp",))
for opt, value in (
    ("--threads", "-1"),
    ("--threads", "0"),
    ("--threads", "1.5"),
    ("--device", "banana"),
    ("--device", "cuda:7"),
    ("--threshold", "nan"),
    ("--threshold", "1.5"),
    ("--threshold", "-0.1"),
    ("--tile", "0"),
    ("--tile", "-64"),
    ("--tile", "100000"),
    ("--batch-size", "0"),
    ("--backend", "banana"),
):
    case("7", f"detect {opt} {value}", [*P, "--mpp", "0.25", opt, value], has=(opt,))
case(
    "7",
    "checkpoint threshold 'abc'",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"threshold": "abc"}),
    has=("c.pt", "threshold"),
)
case(
    "7",
    "checkpoint threshold NaN",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"threshold": float("nan")}),
    has=("c.pt", "threshold"),
)
case(
    "7",
    "checkpoint spacing 0",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"mpp": 0}),
    has=("c.pt", "spacing"),
)
case(
    "7",
    "checkpoint spacing 'x'",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"mpp": "x"}),
    has=("c.pt",),
)
case(
    "7",
    "checkpoint of an unknown model name",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", config={"name": "resnet9000"}),
    has=("c.pt", "resnet9000"),
)
case(
    "7",
    "checkpoint with a bad model setting",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", config={"width": -3}),
    has=("c.pt",),
)
case(
    "7",
    "checkpoint without weights",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", drop="state_dict"),
    has=("c.pt",),
)
case(
    "7",
    "checkpoint with an unknown interpolation",
    [*P, "--mpp", "0.25", "-m", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"interpolation": "spline"}),
    has=("c.pt", "interpolation"),
)
case(
    "7",
    "model summary of a checkpoint with threshold 'abc'",
    ["model", "summary", "{tmp}/c.pt"],
    setup=lambda c: checkpoint_with(c.tmp / "c.pt", {"threshold": "abc"}),
    has=("c.pt",),
)
for args, opt in (
    (
        ["data", "split", "{data}/annotations/MIDOG.json", "--out", "{tmp}/s.json", "--val-fraction", "1.5"],
        "--val-fraction",
    ),
    (
        ["data", "split", "{data}/annotations/MIDOG.json", "--out", "{tmp}/s.json", "--val-fraction", "nan"],
        "--val-fraction",
    ),
    (["data", "split", "{data}/annotations/MIDOG.json", "--out", "{tmp}/s.json", "--seed", "-1"], "--seed"),
    (["data", "image", "{data}/" + SVS, "--target-mpp", "0"], "--target-mpp"),
    (["stain", "unmix", "{data}/" + TILE, "--out", "{tmp}/u", "--beta", "0"], "--beta"),
    (["stain", "unmix", "{data}/" + TILE, "--out", "{tmp}/u", "--alpha", "60"], "--alpha"),
    (["stain", "unmix", "{data}/" + TILE, "--out", "{tmp}/u", "--residual-scale", "-1"], "--residual-scale"),
    (["stain", "vectors", "{data}/" + TILE, "--alpha", "nan"], "--alpha"),
    (["stain", "vectors", "{data}/" + TILE, "--mpp", "1e-9"], "--mpp"),
    (
        ["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--per-image", "0"],
        "--per-image",
    ),
    (["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--sigma-um", "0"], "--sigma-um"),
    (
        ["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--threshold", "nan"],
        "--threshold",
    ),
    (["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--patch", "0"], "--patch"),
    (["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--crop", "100000"], "--crop"),
    (["mine", "residual", "{data}/" + TILE, "--mpp", "50", "--out", "{tmp}/n.csv"], "--mpp"),
    (["mine", "hard", "{tmp}", "--rounds", "0"], "--rounds"),
    (["mine", "hard", "{tmp}", "--drop-quantile", "1"], "--drop-quantile"),
    (["mine", "hard", "{tmp}", "--patience", "0"], "--patience"),
    (["mine", "hard", "{tmp}", "--max-minutes", "-5"], "--max-minutes"),
    (["train", "tiny", "--max-minutes", "0"], "--max-minutes"),
    (["calibrate", "{tmp}", "--limit", "0"], "--limit"),
    (["calibrate", "{tmp}", "--threads", "-2"], "--threads"),
    (["calibrate", "{tmp}", "--device", "banana"], "--device"),
    (["augment", "preview", "--n", "0", "--out", "{tmp}/p.png"], "--n"),
    (["augment", "preview", "--n-aug", "-1", "--out", "{tmp}/p.png"], "--n-aug"),
    (["model", "check", "fast", "--image", "{data}/" + PATCH, "--size", "0"], "--size"),
    (["model", "summary", "fast", "--set", "width=[1"], "--set"),
    (["evaluate", "-t", "{data}/" + GT_2025 + "/ground_truth.json", "-p", "{data}/" + GT_2025, "--mpp", "0"], "--mpp"),
):
    words = [a for a in args[:2] if not a.startswith(("{", "-"))]
    value = args[args.index(opt) + 1]
    case("7", f"{' '.join(words)} {opt} {value}", args, has=(opt,))
case("7", "train --set device=banana", ["train", "tiny", "--set", "device=banana"], has=("device",))

# ---- 8: mine residual --labels -------------------------------------------------------------------
MR = ["mine", "residual", "{data}/" + TILE, "--mpp", "0.25", "--out", "{tmp}/n.csv", "--labels"]
TILE_NAME = Path(TILE).name
case(
    "8",
    "--labels is a binary file (a PNG named .csv)",
    [*MR, "{tmp}/l.csv"],
    setup=lambda c: (c.tmp / "l.csv").write_bytes(real_png()),
    has=("l.csv",),
)
case(
    "8",
    "--labels with a NaN coordinate",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", f"image,x,y,label\n{TILE_NAME},nan,3,mitotic figure\n"),
    has=("l.csv", "line 2"),
)
case(
    "8",
    "--labels with an inf coordinate",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", f"image,x,y\n{TILE_NAME},5,inf\n"),
    has=("l.csv", "line 2"),
)
case(
    "8",
    "--labels with a text coordinate",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", f"image,x,y\n{TILE_NAME},five,3\n"),
    has=("l.csv",),
)
case(
    "8",
    "--labels with a missing coordinate",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", f"image,x,y\n{TILE_NAME},5\n"),
    has=("l.csv",),
)
case(
    "8",
    "--labels without an image column",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", "x,y\n5,3\n"),
    has=("l.csv", "image"),
)
case(
    "8",
    "--labels with NUL bytes",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", b"image,x,y\n\x00\x00,1,2\n"),
    has=("l.csv",),
)
case(
    "8",
    "--labels folder with a NaN in a GeoJSON",
    [*MR, "{tmp}/lab"],
    setup=lambda c: (
        (c.tmp / "lab").mkdir(),
        (c.tmp / "lab" / (Path(TILE).stem + ".geojson")).write_text(
            '{"type": "FeatureCollection", "features": [{"type": "Feature", '
            '"geometry": {"type": "Point", "coordinates": [NaN, 2]}, "properties": {}}]}'
        ),
    ),
    has=(".geojson",),
)
case("8", "--labels missing", [*MR, "{tmp}/nope.csv"], has=("nope.csv",))
case(
    "8",
    "--labels matching no image: warned",
    [*MR, "{tmp}/l.csv"],
    setup=_write("l.csv", "image,x,y\nother.tif,5,3\n"),
    expect="ok",
    check=_warned("--labels"),
)


# ---- 9: leftovers and noise ----------------------------------------------------------------------
def _plant_temp(folder: str, name: str):
    def setup(ctx: Ctx) -> None:
        d = ctx.tmp / folder
        d.mkdir(parents=True, exist_ok=True)
        p = d / name
        p.write_bytes(b"")
        old = time.time() - 3600
        os.utime(p, (old, old))

    return setup


def _temp_gone(folder: str, name: str):
    def check(ctx: Ctx, r: Result) -> str | None:
        return f"{name} still there" if (ctx.tmp / folder / name).exists() else None

    return check


case(
    "9",
    "evaluate removes a stale temp file in --out",
    [*EV[:-1], "{tmp}/ev"],
    setup=lambda c: (
        eval_inputs(c, truth=REAL_TRUTH),
        _plant_temp("ev", ".~mitodet-partial~.metrics.a1b2c3d4.json")(c),
    ),
    expect="ok",
    check=_temp_gone("ev", ".~mitodet-partial~.metrics.a1b2c3d4.json"),
)
case(
    "9",
    "stain unmix removes a stale temp file in --out",
    ["stain", "unmix", "{data}/" + TILE, "--out", "{tmp}/u"],
    setup=_plant_temp("u", ".~mitodet-partial~.x_residual.k9z_0abc.png"),
    expect="ok",
    check=_temp_gone("u", ".~mitodet-partial~.x_residual.k9z_0abc.png"),
)


def _user_dotfiles_kept(folder: str, names: tuple[str, ...]):
    def check(ctx: Ctx, r: Result) -> str | None:
        gone = [n for n in names if not (ctx.tmp / folder / n).exists()]
        return f"deleted the user's {', '.join(gone)}" if gone else None

    return check


USER_DOTFILES = (".env.template", ".notes.12345678.txt", ".backup.archive_.tar", ".img.mitotic-figures.k2j_x9ab.json")
for _cmd, _folder, _args in (
    ("detect", "out", [*P, "--mpp", "0.25"]),
    ("evaluate", "ev", [*EV[:-1], "{tmp}/ev"]),
):
    case(
        "9",
        f"{_cmd} leaves the user's old dotfiles in its output folder (only its own prefix is cleared)",
        _args,
        setup=lambda c, f=_folder, cmd=_cmd: (
            eval_inputs(c, truth=REAL_TRUTH) if cmd == "evaluate" else None,
            *(_plant_temp(f, n)(c) for n in USER_DOTFILES),
        ),
        expect="ok",
        check=_user_dotfiles_kept(_folder, USER_DOTFILES),
    )


def _resume_with_temp(ctx: Ctx) -> None:
    run = ctx.copy_run()
    _plant_temp("run", ".~mitodet-partial~.last.zz99yy88.pt")(ctx)
    assert run.is_dir()


case(
    "9",
    "train --resume removes a stale temp file in the run",
    ["train", "--resume", "{tmp}/run", "--max-minutes", "0.001", "--quiet"],
    setup=_resume_with_temp,
    expect="ok",
    check=_temp_gone("run", ".~mitodet-partial~.last.zz99yy88.pt"),
    timeout=300,
)
case(
    "9",
    "detect removes a stale temp file in --out (kill -9 leftover)",
    [*P, "--mpp", "0.25"],
    setup=_plant_temp("out", ".~mitodet-partial~.A00_01_0.mitotic-figures.q1w2e3r4.json"),
    expect="ok",
    check=_temp_gone("out", ".~mitodet-partial~.A00_01_0.mitotic-figures.q1w2e3r4.json"),
)
case(
    "9",
    "a fresh temp file of a running writer is left alone",
    [*EV[:-1], "{tmp}/ev"],
    setup=lambda c: (
        eval_inputs(c, truth=REAL_TRUTH),
        (c.tmp / "ev").mkdir(),
        (c.tmp / "ev" / ".~mitodet-partial~.metrics.fresh123.json").write_text(""),
    ),
    expect="ok",
    check=lambda c, r: (
        None if (c.tmp / "ev" / ".~mitodet-partial~.metrics.fresh123.json").exists() else "removed a file in use"
    ),
)
case(
    "9",
    "TIFF with a bad IFD offset: no tifffile log line",
    [*DET, "{tmp}/b.tif", "--mpp", "0.25"],
    setup=lambda c: (
        write_tiff(c.tmp / "b.tif", _rgb()),
        (c.tmp / "b.tif").write_bytes(
            (c.tmp / "b.tif").read_bytes()[:4] + struct.pack("<I", 10**9) + (c.tmp / "b.tif").read_bytes()[8:]
        ),
    ),
    has=("b.tif",),
)
case(
    "9",
    "TIFF with an invalid photometric tag: no tifffile log line",
    ["stain", "vectors", "{tmp}/p.tif"],
    setup=lambda c: tiff_patched(c.tmp / "p.tif", 262, 99),
    expect="ok",
    check=lambda c, r: "tifffile chatter" if "tifffile" in r.err or "raised" in r.err else None,
)
case(
    "9",
    "TIFF with a broken description tag: no tifffile log line",
    ["stain", "vectors", "{tmp}/d.tif"],
    setup=lambda c: tiff_patched(c.tmp / "d.tif", 270, 10**8),
    expect="ok",
    check=lambda c, r: "tifffile chatter" if "tifffile" in r.err or "raised" in r.err else None,
)


def _stdout_results(ctx: Ctx, r: Result) -> str | None:
    if not any("mitotic figure(s)" in line for line in r.out_lines):
        return "result line not on stdout"
    return "result line on stderr" if any("mitotic figure(s)" in line for line in r.err_lines) else None


case(
    "9",
    "detect: result lines on stdout (> log captures them)",
    [*P, "--mpp", "0.25"],
    expect="ok",
    check=_stdout_results,
)
case(
    "9",
    "detect: an error goes to stderr, not stdout",
    [*DET, "{tmp}/nope.jpg", "--mpp", "0.25"],
    has=("nope.jpg",),
    check=lambda c, r: "error on stdout" if "error" in r.out else None,
)


def _interruptible() -> None:
    """In the child: the memory limit, and SIGINT back to its default (a benchmark started in the
    background by a shell inherits SIGINT ignored, and Python then never raises KeyboardInterrupt)."""
    _limit_memory()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(ctx: Ctx, sig: int = signal.SIGINT) -> Result:
    """detect on 60 real patches; ``sig`` (SIGINT: Ctrl-C) once the first output exists."""
    (ctx.tmp / "in").mkdir()
    for i in range(60):
        shutil.copy(DATA / PATCH, ctx.tmp / "in" / f"p{i:02d}.jpg")
    args = _fmt([*DET, "{tmp}/in", "--mpp", "0.25"], ctx)
    e = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mitodet", *args],
        cwd=ctx.tmp,
        env=e,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_interruptible,
    )
    while not (ctx.tmp / "out").is_dir() and proc.poll() is None and time.perf_counter() - t0 < 300:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return Result(proc.returncode, out, err, time.perf_counter() - t0)


case(
    "9",
    "Ctrl-C during detection: exit 130, no traceback, nothing half-written",
    [*DET, "{tmp}/in", "--mpp", "0.25"],
    run=_interrupt,
    code=130,
    has=("interrupted",),
    check=lambda c, r: no_temps(c.tmp / "out"),
)


def _third_party_warning(ctx: Ctx) -> Result:
    code = (
        "import warnings\n"
        "from mitodet.cli.main import run\n"
        "import mitodet.evaluate.midog as m\n"
        "orig = m.evaluate\n"
        "def ev2(*a, **k):\n"
        "    warnings.warn_explicit('TypedStorage is deprecated', UserWarning, 'torch/storage.py', 1,\n"
        "                           module='torch.storage')\n"
        "    return orig(*a, **k)\n"
        "m.evaluate = ev2\n"
        f"run(['evaluate', '-t', '{ctx.tmp}/nope.json', '-p', '{ctx.tmp}', '-o', '{ctx.tmp}/ev'])\n"
    )
    return run_cli([], ctx.tmp, python_args=["-c", code])


case("9", "a torch warning before an error is not shown", [], run=_third_party_warning, has=("nope.json",))

# ---- 10: interface habits --------------------------------------------------------------------------
case(
    "10",
    "--overlay / --no-overlay are flags",
    [*P, "--mpp", "0.25", "--overlay", "--no-overlay", "--overlay"],
    expect="ok",
    check=lambda c, r: None if (c.tmp / "out" / "A00_01_0.overlay.png").is_file() else "no overlay written",
)
case(
    "10", "--overlay true (a value after a flag)", [*P, "--mpp", "0.25", "--overlay", "true"], has=("true", "--overlay")
)
case(
    "10",
    "--version",
    ["--version"],
    expect="ok",
    check=lambda c, r: None if r.out.startswith("mitodet ") else "no version",
)
case("10", "-h on the root", ["-h"], expect="ok", check=lambda c, r: None if "Usage: mitodet" in r.out else "no usage")
case(
    "10",
    "-h on a subcommand",
    ["mine", "residual", "-h"],
    expect="ok",
    check=lambda c, r: None if "--labels" in r.out else "no options shown",
)
case(
    "10",
    "python -m mitodet",
    [],
    run=lambda c: run_cli([], c.tmp, python_args=["-m", "mitodet", "--version"]),
    expect="ok",
)


def _all_help(ctx: Ctx) -> Result:
    cmds = [
        [],
        ["detect"],
        ["calibrate"],
        ["evaluate"],
        ["train"],
        ["data"],
        ["data", "stats"],
        ["data", "split"],
        ["data", "image"],
        ["model"],
        ["model", "list"],
        ["model", "summary"],
        ["model", "export"],
        ["model", "check"],
        ["augment"],
        ["augment", "preview"],
        ["stain"],
        ["stain", "unmix"],
        ["stain", "vectors"],
        ["mine"],
        ["mine", "residual"],
        ["mine", "hard"],
    ]
    out, err, code = [], [], 0
    for c in cmds:
        r = run_cli([*c, "--help"], ctx.tmp)
        code = code or r.code
        bad = [
            line
            for line in r.out_lines
            if "…" in line
            or "<bool>" in line
            or len(line) > 80
            or (line.rstrip().endswith("...") and not line.startswith("Usage") and "..." not in line.split()[0])
        ]
        out += [f"{' '.join(c) or 'mitodet'}: {line.strip()}" for line in bad]
        err += r.err_lines
    summary = out or [f"{len(cmds)} help texts read: none cut, no '<bool>', every line <= 80 columns"]
    return Result(code, "\n".join(summary), "\n".join(err), 0.0)


case(
    "10",
    "every --help at 80 columns in a pipe: nothing cut, no '<bool>'",
    [],
    run=_all_help,
    expect="ok",
    check=lambda c, r: None if "help texts read" in r.out else f"cut, too wide or <bool>: {r.out_lines[0]}",
)
case(
    "10",
    "augment preview as the README shows it, in a fresh checkout (no runs/)",
    ["augment", "preview", "--protocol", "both", "--out", "{tmp}/grid.png"],
    cwd="repo",
    expect="ok",
    timeout=300,
)


def _no_onnx(ctx: Ctx) -> Result:
    code = (
        "import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
        "from mitodet.cli.main import run\n"
        f"run(['model', 'export', '{ROOT}/mitodet/weights/default-ca-rgb.pt', '--onnx', '{ctx.tmp}/m.onnx'])\n"
    )
    return run_cli([], ctx.tmp, python_args=["-c", code])


case("10", "model export --onnx without onnx installed: names the extra", [], run=_no_onnx, has=("mitodet[export]",))


def _no_onnxruntime(ctx: Ctx) -> Result:
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from mitodet.cli.main import run\n"
        f"run(['detect', '{DATA / PATCH}', '--mpp', '0.25', '--backend', 'onnx', '--out', '{ctx.tmp}/o'])\n"
    )
    return run_cli([], ctx.tmp, python_args=["-c", code])


case(
    "10",
    "detect --backend onnx without onnxruntime: names the extra",
    [],
    run=_no_onnxruntime,
    has=("mitodet[export]",),
)


def _wheel(ctx: Ctx) -> Result:
    """pip install . (non-editable): the configs ship; a bundled config name works outside the checkout."""
    r = run_cli(
        [],
        ctx.tmp,
        python_args=[
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--target",
            str(ctx.tmp / "site"),
            str(ROOT),
        ],
        timeout=300,
    )
    if r.code != 0:
        return r
    return run_cli(
        ["train", "default-ca-rgb", "--set", f"data.crops={ctx.tmp}/none"],
        ctx.tmp,
        env={"PYTHONPATH": str(ctx.tmp / "site")},
    )


case(
    "10",
    "after pip install . the bundled configs ship (train default-ca-rgb)",
    [],
    run=_wheel,
    has=("site/mitodet/configs/default-ca-rgb.yaml",),
    timeout=400,
)
case(
    "10",
    "train with an unknown config name lists the bundled ones",
    ["train", "banana"],
    has=("banana", "default-ca-rgb"),
)


MINED = "data/tissue/monuseg/TCGA-21-5784-01Z-00-DX1.tif"  # a tile with pigment: something is mined


def _mined_paths(ctx: Ctx, r: Result) -> str | None:
    rows = list(csv.DictReader(open(ctx.tmp / "m" / "n.csv")))
    bad = [row["image"] for row in rows if row["image"] != "../" + MINED]
    return f"path written as {bad[0]}" if bad else (None if rows else "nothing mined")


case(
    "10",
    "mine residual writes paths as given (relative, links not resolved)",
    ["mine", "residual", MINED, "--mpp", "0.25", "--out", "m/n.csv"],
    setup=lambda c: (c.tmp / "data").symlink_to(DATA),
    expect="ok",
    check=_mined_paths,
)
case(
    "10",
    "mine residual on a PNG without --mpp: refused as detect does",
    ["mine", "residual", "{tmp}/x.png", "--out", "{tmp}/n.csv"],
    setup=lambda c: (c.tmp / "x.png").write_bytes(real_png()),
    has=("x.png", "--mpp"),
)
case("10", "unknown command", ["banana"], has=("banana",))
case("10", "unknown option", ["detect", "--banana"], has=("--banana",))
case("10", "missing required option", ["evaluate", "-t", "x.json"], has=("--pred",))
case(
    "10",
    "model list table at 80 columns: nothing cut",
    ["model", "list"],
    expect="ok",
    check=lambda c, r: "cut with …" if "…" in r.out else None,
)


# ---- 11: evaluate reads what users annotate ------------------------------------------------------
def _icpr(kind: str, pred: str = "det"):
    def args(ctx: Ctx) -> list[str]:
        truth = icpr_truth(ctx, kind)
        preds = ctx.icpr_preds() / "det"
        if pred != "det":  # only one format of detect's outputs
            (ctx.tmp / "p").mkdir()
            for f in preds.glob(f"*.{pred}"):
                if pred != "json" or f.name.endswith(".mitotic-figures.json"):
                    shutil.copy(f, ctx.tmp / "p")
            preds = ctx.tmp / "p"
        return ["evaluate", "-t", str(truth), "-p", str(preds), "-o", str(ctx.tmp / "ev"), "--mpp", ICPR_MPP]

    return args


def _same_f1(ctx: Ctx, r: Result) -> str | None:
    f1 = f1_of(r)
    if f1 is None:
        return "no F1 in the table"
    ref = run_cli(_icpr("midog")(ctx)[:-2], ctx.tmp)
    ref_f1 = f1_of(ref)
    return None if f1 == ref_f1 else f"F1 {f1} != {ref_f1} from the MIDOG JSON (mm) truth"


case(
    "11",
    "ICPR 2012 truth as QuPath GeoJSON files, detect's JSON predictions",
    _icpr("geojson"),
    expect="ok",
    check=_same_f1,
    timeout=900,
)
case("11", "ICPR 2012 truth as per-image CSVs", _icpr("csv"), expect="ok", check=_same_f1, timeout=900)
case(
    "11",
    "ICPR 2012 truth as one CSV table with an image column",
    _icpr("table"),
    expect="ok",
    check=_same_f1,
    timeout=900,
)
case("11", "predictions as detect's CSV files", _icpr("geojson", "csv"), expect="ok", check=_same_f1, timeout=900)
case(
    "11", "predictions as detect's GeoJSON files", _icpr("geojson", "geojson"), expect="ok", check=_same_f1, timeout=900
)
case("11", "GeoJSON truth without --mpp", lambda c: _icpr("geojson")(c)[:-2], has=("--mpp",), timeout=900)
case(
    "11",
    "GeoJSON truth with a polygon",
    ["evaluate", "-t", "{tmp}/t.geojson", "-p", "{tmp}/p.json", "-o", "{tmp}/ev", "--mpp", "0.25"],
    setup=lambda c: (
        (c.tmp / "t.geojson").write_text(
            '{"type": "FeatureCollection", "features": [{"type": "Feature", '
            '"geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}}]}'
        ),
        (c.tmp / "p.json").write_text(json.dumps(midog_doc([GOOD_PT]))),
    ),
    has=("t.geojson", "Point"),
)
case(
    "11",
    "CSV truth with an unknown class",
    ["evaluate", "-t", "{tmp}/t.csv", "-p", "{tmp}/p.json", "-o", "{tmp}/ev", "--mpp", "0.25"],
    setup=lambda c: (
        (c.tmp / "t.csv").write_text("x,y,label\n5,5,banana\n"),
        (c.tmp / "p.json").write_text(json.dumps(midog_doc([GOOD_PT]))),
    ),
    has=("t.csv", "banana"),
)


# ---- issue 19, the second round: benchmarks/reliability_round2.py ---------------------------------
def _round2():
    import importlib.util

    spec = importlib.util.spec_from_file_location("reliability_round2", ROOT / "benchmarks" / "reliability_round2.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ROUND2 = _round2()
ROUND2.add_cases(sys.modules[__name__])
ITEMS.update(ROUND2.item_labels())


# -- running the table ------------------------------------------------------------------------------
@dataclass
class Outcome:
    case: Case
    command: str
    seen: str
    passed: bool
    reason: str
    seconds: float


BOX = set("┏┓┗┛┃━┳┻╇╈┡┩│─┌┐└┘├┤┬┴┼╭╮╰╯ ")


def _summary(r: Result) -> str:
    """The lines that say something: warnings first, then output without table rules; of a
    table, its title and its 'overall' row (cells joined by '|')."""
    warn = [line for line in r.err_lines if line.startswith("warning:")]
    text = [line for line in r.out_lines if not set(line) <= BOX and not line.lstrip().startswith("┃")]
    rows = [i for i, line in enumerate(text) if line.lstrip().startswith("│")]
    if rows:  # a table: its title and its 'overall' row (else its first row), cells joined by '|'
        pick = next((i for i in rows if "overall" in text[i]), rows[0])
        cells = " | ".join(c.strip() for c in text[pick].split("│") if c.strip())
        text = [line for i, line in enumerate(text) if i not in rows and i < pick][:1] + [cells]
    return " ⏎ ".join((warn + text)[:2]) or " ⏎ ".join(r.err_lines[:1])


def _show(text: str, ctx: Ctx, n: int = 170) -> str:
    text = text.replace(str(ctx.tmp), "$TMP").replace(str(DATA), "$DATA").replace(str(ROOT), "$REPO")
    text = " ⏎ ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= n else text[: n - 1] + "…"


def run_case(c: Case, root: Path, shared: Shared) -> Outcome:
    tmp = Path(tempfile.mkdtemp(prefix="case-", dir=root))
    ctx = Ctx(tmp, shared)
    t0 = time.perf_counter()
    try:
        if c.setup is not None:
            c.setup(ctx)
        args = c.args(ctx) if callable(c.args) else _fmt(c.args, ctx)
        command = "mitodet " + " ".join(args) if args else "(python -c / several commands: see the script)"
        cwd = ROOT if c.cwd == "repo" else tmp
        r = c.run(ctx) if c.run is not None else run_cli(args, cwd, timeout=c.timeout)
        reason = check_error(r, c.has, c.code, c.lines) if c.expect == "error" else check_ok(r)
        if reason is None and c.check is not None:
            reason = c.check(ctx, r)
        if reason is None and c.expect == "error" and not c.check and (tmp / "out").is_dir():
            reason = no_temps(tmp / "out")
        if c.expect == "error":
            errors = [line for line in r.err_lines if line.startswith("error: ")]
            seen = (errors[0] if errors else (r.err_lines[-1] if r.err_lines else "")) + f"  [exit {r.code}]"
        else:
            seen = _summary(r) + f"  [exit {r.code}]"
        if "Traceback (most recent call last)" in r.err:
            seen = "Traceback ... " + (r.err_lines[-1] if r.err_lines else "")
        return Outcome(
            c, _show(command, ctx, 140), _show(seen, ctx), reason is None, reason or "", time.perf_counter() - t0
        )
    except Exception as err:  # a setup that broke: the case fails, the table goes on
        return Outcome(
            c, "", f"(setup failed: {type(err).__name__}: {err})"[:170], False, "setup failed", time.perf_counter() - t0
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def write_markdown(outcomes: list[Outcome], seconds: float, jobs: int) -> str:
    n = len(outcomes)
    passed = sum(o.passed for o in outcomes)
    lines = [
        "# Reliability: bad inputs and faults tried against the CLI",
        "",
        "Generated by `python benchmarks/reliability.py` (do not edit by hand): every row ran the real",
        "`mitodet` command in a subprocess, in a temporary folder, on the real data of `../shared/data` or",
        "on hostile files built from real pieces, and checked what a person sees. A bad input must give",
        "exit code 2 and one `error: ...` line naming the file or option (detect may add its",
        '"N of M input(s) failed" summary; `note:`/`warning:` lines are allowed), no traceback, no library',
        "chatter and nothing half-written; a good input must succeed with the expected result.",
        "",
        f"**{n} cases: {passed} pass, {n - passed} fail.** "
        f"Measured in {seconds / 60:.1f} min with {jobs} at a time on {os.cpu_count()} CPU cores "
        f"(load average {os.getloadavg()[0]:.1f} at the end: other work shared the machine), "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        "| # | item | case | command | what the user sees | result |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for i, o in enumerate(outcomes, 1):
        result = "pass" if o.passed else f"**FAIL**: {o.reason}"
        lines.append(
            f"| {i} | {ITEMS.get(o.case.item, o.case.item)} | {_cell(o.case.name)} | "
            f"`{_cell(o.command)}` | {_cell(o.seen)} | {_cell(result)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", action="append", default=[], help="run only cases whose item or name contains this")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="cases run side by side (default 2)")
    ap.add_argument(
        "--out", type=Path, default=None, help=f"markdown table (default {OUT_MD.relative_to(ROOT)} for a full run)"
    )
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    a = ap.parse_args(argv)
    cases = [c for c in CASES if not a.k or any(k.lower() in f"{c.item} {c.name}".lower() for k in a.k)]
    if a.list:
        for i, c in enumerate(cases, 1):
            print(f"{i:3d}  {ITEMS.get(c.item, c.item):24s} {c.name}")
        print(f"{len(cases)} cases")
        return 0
    if not DATA.is_dir():
        print(f"the real data folder {DATA} is absent (set MITODET_DATA)", file=sys.stderr)
        return 2
    out_md = a.out or (OUT_MD if not a.k else None)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mitodet-reliability-") as root:
        shared = Shared(Path(root) / "shared")
        with ThreadPoolExecutor(max(1, a.jobs)) as pool:
            futures = [pool.submit(run_case, c, Path(root), shared) for c in cases]
            outcomes = []
            for i, f in enumerate(futures, 1):
                o = f.result()
                outcomes.append(o)
                mark = "pass" if o.passed else f"FAIL ({o.reason})"
                print(f"{i:3d}/{len(cases)} {o.case.name[:60]:60s} {o.seconds:5.1f}s {mark}", flush=True)
    seconds = time.perf_counter() - t0
    passed = sum(o.passed for o in outcomes)
    print(f"{len(outcomes)} cases, {passed} pass, {len(outcomes) - passed} fail, {seconds / 60:.1f} min")
    if out_md is not None:
        out_md.parent.mkdir(parents=True, exist_ok=True)
        out_md.write_text(write_markdown(outcomes, seconds, a.jobs), encoding="utf-8")
        print(f"wrote {out_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
