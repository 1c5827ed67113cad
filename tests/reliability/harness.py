"""Run one reliability case: the real ``mitodet`` CLI in a subprocess, its folder, its checks.

A case (``Case``) is declared by ``case(item, name, args, ...)`` in one of the ``cases_*`` modules;
``run_case`` runs it in a fresh temporary folder and returns an ``Outcome`` (what the user saw,
pass or fail and why). ``tests/reliability/test_cases.py`` runs them under pytest and
``benchmarks/reliability.py`` writes docs/reliability.md from them.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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


DET = ["detect", "--out", "{tmp}/out"]


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
