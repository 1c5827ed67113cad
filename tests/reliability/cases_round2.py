"""Second-round reliability cases (issue 19), after the first round's items 0-11.

One item per defect class the issue lists (R2.1 ... R2.18), each with the issue's own case and at
least one further case of the same class that the issue did not list. Every case runs the real
``mitodet`` command in a subprocess, as the first round's cases do; faults that a plain machine
cannot produce on demand (a full disk) are injected into the real CLI run in the child process.

    python benchmarks/reliability.py -k R2.    # only these cases, into a table
    pytest tests/reliability --reliability -k R2.   # only these cases, as tests
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.reliability.cases_evaluate import EV, GOOD_PT, REAL_TRUTH
from tests.reliability.cases_leftovers import USER_DOTFILES, _interrupt, _plant_temp, _user_dotfiles_kept
from tests.reliability.cases_stale import _recomputed
from tests.reliability.harness import DATA, DET, ICPR, PATCH, ROOT, STACK, TILE, Result, _fmt, case, no_temps, run_cli
from tests.reliability.hostile import _rgb, _write, eval_inputs, midog_doc, tile_pixels, write_tiff

CLASSES = {
    "loses": "loses or overwrites the user's files",
    "wrong": "silently wrong",
    "inject": "injection",
    "trace": "tracebacks and hangs",
    "msg": "messages",
}
ITEMS = {
    "R2.1": ("loses", "stale-temp cleaner"),
    "R2.2": ("loses", "same name, later run"),
    "R2.3": ("loses", "input named like an output"),
    "R2.4": ("loses", "train over a finished run"),
    "R2.5": ("loses", "failed --resume --set"),
    "R2.6": ("wrong", "ONNX cache trusted by name"),
    "R2.7": ("wrong", "TIFF pages and spacing"),
    "R2.8": ("wrong", "evaluate pairing and paths"),
    "R2.9": ("wrong", "bad numbers, reuse, busy run"),
    "R2.10": ("wrong", "grand-challenge stack"),
    "R2.11": ("inject", "CSV formulas"),
    "R2.12": ("inject", "names on the terminal"),
    "R2.13": ("trace", "absurd JSON"),
    "R2.14": ("trace", "console and name encoding"),
    "R2.15": ("trace", "--ray with nothing listening"),
    "R2.16": ("trace", "cache that cannot be written"),
    "R2.17": ("msg", "disk full, all failed, SIGTERM"),
    "R2.18": ("msg", "library chatter"),
}


def item_labels() -> dict[str, str]:
    return {k: f"{k} {CLASSES[c]}: {what}" for k, (c, what) in ITEMS.items()}


def add_cases() -> None:  # noqa: C901 - one flat list of cases, read top to bottom
    """Declare this round's cases (``case``) after the first round's."""
    P = [*DET, "{data}/" + PATCH, "--mpp", "0.25"]
    RGB = "{repo}/mitodet/weights/default-ca-rgb.pt"

    def py(ctx, code: str, env: dict | None = None, timeout: float = 180) -> Result:
        """The real CLI in a child Python, after ``code`` set up a fault (a full disk ...)."""
        return run_cli([], ctx.tmp, python_args=["-c", code], env=env, timeout=timeout)

    def first(ctx, *args) -> None:
        r = ctx.run([str(a) for a in args])
        if r.code != 0:
            raise RuntimeError(r.err[-500:])

    def same_bytes(path: str, key: str):
        def check(ctx, r):
            return None if (ctx.tmp / path).read_bytes() == ctx.vars[key] else f"{path} was changed"

        return check

    def keep(ctx, path: str, key: str) -> None:
        ctx.vars[key] = (ctx.tmp / path).read_bytes()

    # ---- R2.1 the stale-temp cleaner removes only what mitodet provably made -------------------
    def dotfiles(folder: str):
        def setup(ctx):
            _plant_temp(folder, "x")(ctx)  # makes the folder
            (ctx.tmp / folder / "x").unlink()
            for n in USER_DOTFILES:
                _plant_temp(folder, n)(ctx)

        return setup

    case(
        "R2.1",
        "evaluate -o . keeps the user's old dotfiles in the working folder",
        ["evaluate", "-t", "truth.json", "-p", "preds", "-o", "."],
        setup=lambda c: (eval_inputs(c, truth=REAL_TRUTH), dotfiles(".")(c)),
        expect="ok",
        check=_user_dotfiles_kept(".", USER_DOTFILES),
    )
    case(
        "R2.1",
        "stain unmix keeps the user's old dotfiles in --out (not listed)",
        ["stain", "unmix", "{data}/" + TILE, "--out", "{tmp}/u"],
        setup=dotfiles("u"),
        expect="ok",
        check=_user_dotfiles_kept("u", USER_DOTFILES),
    )

    # ---- R2.2 a later run of another input of the same name ------------------------------------
    def same_name(ctx) -> None:
        for sub, src in (("a", PATCH), ("b", ICPR + "/A00_02_0.jpg")):
            (ctx.tmp / sub).mkdir()
            shutil.copy(DATA / src, ctx.tmp / sub / "x.jpg")
        first(ctx, "detect", ctx.tmp / "a/x.jpg", "--mpp", "0.25", "--out", ctx.tmp / "out")
        keep(ctx, "out/x.mitotic-figures.json", "first")

    case(
        "R2.2",
        "b/x.jpg after a/x.jpg into one --out: refused, the first results kept",
        [*DET, "{tmp}/b/x.jpg", "--mpp", "0.25"],
        setup=same_name,
        has=("x.jpg", "--force"),
        check=same_bytes("out/x.mitotic-figures.json", "first"),
    )

    def replaced(ctx, r):
        rows = list(csv.DictReader((ctx.tmp / "out" / "summary.csv").open()))
        doc = json.loads((ctx.tmp / "out" / "x.mitotic-figures.json").read_text())
        if [row["input"] for row in rows] != [str(ctx.tmp / "b/x.jpg")]:
            return f"summary.csv lists {[row['input'] for row in rows]}"
        return None if doc["provenance"]["input"].endswith("b/x.jpg") else "outputs not replaced"

    case(
        "R2.2",
        "the same with --force: replaced, and summary.csv lists only the new input (not listed)",
        [*DET, "{tmp}/b/x.jpg", "--mpp", "0.25", "--force"],
        setup=same_name,
        expect="ok",
        check=replaced,
    )

    # ---- R2.3 inputs named like detect's own outputs -------------------------------------------
    def victim(ctx) -> None:
        from PIL import Image

        (ctx.tmp / "d").mkdir()
        shutil.copy(DATA / PATCH, ctx.tmp / "d" / "roi.jpg")
        Image.open(DATA / PATCH).crop((0, 0, 200, 200)).save(ctx.tmp / "d" / "roi.tissue.png")
        keep(ctx, "d/roi.tissue.png", "victim")

    case(
        "R2.3",
        "roi.jpg beside an input roi.tissue.png, --out the same folder: refused, input kept",
        ["detect", "{tmp}/d/roi.jpg", "{tmp}/d/roi.tissue.png", "--mpp", "0.25", "--out", "{tmp}/d", "--overlay"],
        setup=victim,
        has=("roi.jpg", "would overwrite an input"),
        check=same_bytes("d/roi.tissue.png", "victim"),
    )

    def grows(ctx) -> None:
        (ctx.tmp / "d").mkdir()
        shutil.copy(DATA / PATCH, ctx.tmp / "d" / "roi.jpg")
        first(ctx, "detect", ctx.tmp / "d", "--mpp", "0.25", "--out", ctx.tmp / "d", "--overlay")

    def one_input(ctx, r):
        return None if "1 input(s)" in r.out else f"the folder grew: {r.out_lines[-1:]}"

    case(
        "R2.3",
        "the output folder as the input folder, run twice: still one input",
        ["detect", "{tmp}/d", "--mpp", "0.25", "--out", "{tmp}/d", "--overlay"],
        setup=grows,
        expect="ok",
        check=one_input,
    )

    def overlay_victim(ctx) -> None:
        victim(ctx)
        (ctx.tmp / "d" / "roi.tissue.png").rename(ctx.tmp / "d" / "roi.overlay.png")
        keep(ctx, "d/roi.overlay.png", "victim")

    case(
        "R2.3",
        "roi.jpg beside an input roi.overlay.png (not listed): refused, input kept",
        ["detect", "{tmp}/d/roi.jpg", "{tmp}/d/roi.overlay.png", "--mpp", "0.25", "--out", "{tmp}/d", "--overlay"],
        setup=overlay_victim,
        has=("roi.jpg", "would overwrite an input"),
        check=same_bytes("d/roi.overlay.png", "victim"),
    )

    # ---- R2.4 / R2.5 training runs ---------------------------------------------------------------
    def finished_run(ctx) -> None:
        run = ctx.copy_run()
        shutil.copy(ctx.tiny_run() / "tiny.yaml", ctx.tmp / "tiny.yaml")
        ctx.vars["best"] = hashlib.sha256((run / "best.pt").read_bytes()).hexdigest()

    def best_kept(ctx, r):
        now = hashlib.sha256((ctx.tmp / "run" / "best.pt").read_bytes()).hexdigest()
        return None if now == ctx.vars["best"] else "best.pt replaced"

    case(
        "R2.4",
        "train --run-dir on a finished run: refused, best.pt kept",
        ["train", "{tmp}/tiny.yaml", "--run-dir", "{tmp}/run", "--quiet"],
        setup=finished_run,
        has=("run", "--force"),
        check=best_kept,
    )
    case(
        "R2.4",
        "train --run-dir on a folder holding only a metrics.csv (not listed): refused",
        ["train", "{tmp}/tiny.yaml", "--run-dir", "{tmp}/r2", "--quiet"],
        setup=lambda c: (
            finished_run(c),
            (c.tmp / "r2").mkdir(),
            shutil.copy(c.tmp / "run" / "metrics.csv", c.tmp / "r2"),
        ),
        has=("r2",),
    )

    def resume_bad_set(ctx) -> None:
        finished_run(ctx)
        keep(ctx, "run/config.yaml", "config")

    case(
        "R2.5",
        "train --resume --set model.name=fast: refused, config.yaml unchanged",
        ["train", "--resume", "{tmp}/run", "--set", "model.name=fast", "--quiet"],
        setup=resume_bad_set,
        has=("run",),
        check=same_bytes("run/config.yaml", "config"),
    )

    def resumes_after(ctx):
        def run(c):
            bad = c.run(["train", "--resume", c.tmp / "run", "--set", "model.width=[1", "--quiet"])
            if bad.code != 2:
                return bad
            return c.run(["train", "--resume", c.tmp / "run", "--max-minutes", "0.001", "--quiet"], timeout=300)

        return run

    case(
        "R2.5",
        "a --resume that failed on a bad --set still resumes afterwards (not listed)",
        [],
        setup=resume_bad_set,
        run=resumes_after(None),
        expect="ok",
        timeout=300,
    )

    # ---- R2.6 ONNX graph cache -------------------------------------------------------------------
    def swap_cache(ctx) -> None:
        cache = ctx.tmp / "cache"
        ctx.vars["env"] = {"MITODET_CACHE": str(cache)}
        for m, out in (("ca-rgb", "o1"), ("ca-od", "o2")):
            r = ctx.run(
                [*_fmt(DET, ctx)[:1], "--out", ctx.tmp / out, DATA / PATCH, "--mpp", "0.25", "--backend", "onnx"]
                + ["-m", ROOT / f"mitodet/weights/default-{m}.pt", "--no-atypical"],
                env=ctx.vars["env"],
            )
            if r.code != 0:
                raise RuntimeError(r.err[-400:])
        graphs = sorted(cache.rglob("*.onnx"))
        if len(graphs) != 2:
            raise RuntimeError(f"{len(graphs)} cached graphs")
        a, b = graphs
        tmp = a.with_suffix(".swap")
        a.rename(tmp), b.rename(a), tmp.rename(b)

    def same_as_first(ctx, r):
        old = json.loads((ctx.tmp / "o1" / "A00_01_0.mitotic-figures.json").read_text())["points"]
        new = json.loads((ctx.tmp / "out" / "A00_01_0.mitotic-figures.json").read_text())["points"]
        return None if old == new else "another model's answer from the swapped cache"

    case(
        "R2.6",
        "two cached ONNX graphs swapped: CA-RGB still gives CA-RGB's answer",
        [],
        setup=swap_cache,
        run=lambda c: c.run(
            [*_fmt(P, c), "-m", _fmt([RGB], c)[0], "--backend", "onnx", "--no-atypical"], env=c.vars["env"]
        ),
        expect="ok",
        check=same_as_first,
        timeout=300,
    )

    def foreign_graph(ctx) -> None:
        swap_cache(ctx)
        for g in (ctx.tmp / "cache").rglob("*.onnx"):
            g.write_bytes(b"\x08\x07not a graph")

    case(
        "R2.6",
        "cached graphs replaced by junk (not listed): exported again, same answer",
        [],
        setup=foreign_graph,
        run=lambda c: c.run(
            [*_fmt(P, c), "-m", _fmt([RGB], c)[0], "--backend", "onnx", "--no-atypical"], env=c.vars["env"]
        ),
        expect="ok",
        check=same_as_first,
        timeout=300,
    )

    # ---- R2.7 TIFF pages and spacing --------------------------------------------------------------
    def pages(name: str, blank_first: bool):
        def setup(ctx) -> None:
            import tifffile

            real = tile_pixels(256)
            blank = np.full((1024, 1024, 3), 255, np.uint8)
            with tifffile.TiffWriter(ctx.tmp / name) as w:
                for page in (blank, real) if blank_first else (real, blank):
                    w.write(page, photometric="rgb", resolution=(40000, 40000), resolutionunit="CENTIMETER")

        return setup

    case(
        "R2.7",
        "2-page TIFF whose larger page 1 is blank",
        [*DET, "{tmp}/two.tif"],
        setup=pages("two.tif", False),
        has=("two.tif", "larger than page 0"),
    )
    case(
        "R2.7",
        "2-page TIFF whose page 0 is blank, the image on page 1",
        [*DET, "{tmp}/two.tif"],
        setup=pages("two.tif", True),
        has=("two.tif", "page 0 is blank"),
    )
    case(
        "R2.7",
        "TIFF with X spacing 0.25 and Y spacing 0.5 µm/px",
        [*DET, "{tmp}/ns.tif"],
        setup=lambda c: write_tiff(c.tmp / "ns.tif", _rgb(), resolution=(40000, 20000), resolutionunit="CENTIMETER"),
        has=("ns.tif", "X and Y pixel spacings differ"),
    )

    def tiled_non_square(ctx) -> None:
        import tifffile

        big = np.tile(tile_pixels(256), (4, 4, 1))
        tifffile.imwrite(
            ctx.tmp / "ns.tif", big, photometric="rgb", tile=(256, 256), resolution=(40000, 20000),
            resolutionunit="CENTIMETER",
        )  # fmt: skip

    case(
        "R2.7",
        "tiled slide TIFF read by OpenSlide with non-square pixels (not listed)",
        [*DET, "{tmp}/ns.tif"],
        setup=tiled_non_square,
        has=("ns.tif", "X and Y pixel spacings differ"),
    )

    # ---- R2.8 evaluate: one prediction file, one truth image; nothing outside the folder ----------
    def two_truths(ctx) -> None:
        pt = [[0.37, 0.75, 0]]
        (ctx.tmp / "truth.json").write_text(json.dumps({"007.tiff": pt, "007.png": pt}))
        (ctx.tmp / "preds").mkdir()
        (ctx.tmp / "preds" / "007.mitotic-figures.json").write_text(json.dumps(midog_doc([GOOD_PT])))

    case(
        "R2.8",
        "one prediction file that truth images 007.tiff and 007.png would share",
        EV,
        setup=two_truths,
        has=("007",),
    )

    def escaping_job(where: str):
        def setup(ctx) -> None:
            eval_inputs(ctx, truth=REAL_TRUTH)
            outside = ctx.tmp / "secret"
            (outside / "output").mkdir(parents=True)
            (outside / "output" / "mitotic-figures.json").write_text(json.dumps(midog_doc([GOOD_PT])))
            path = "../secret" if where == "pk" else str(outside)
            job = {
                "pk": path if where == "pk" else "job1",
                "inputs": [{"image": {"name": "007.tiff"}, "interface": {"slug": "histopathology-region-of-interest"}}],
                "outputs": [{"interface": {"slug": "mitotic-figures", "relative_path": "mitotic-figures.json"}}],
            }
            if where == "abs":
                job["outputs"][0]["interface"]["relative_path"] = str(outside / "output" / "mitotic-figures.json")
            shutil.rmtree(ctx.tmp / "preds")
            (ctx.tmp / "preds").mkdir()
            (ctx.tmp / "preds" / "predictions.json").write_text(json.dumps([job]))

        return setup

    case(
        "R2.8",
        "grand-challenge job whose pk is ../secret",
        EV,
        setup=escaping_job("pk"),
        has=("predictions.json",),
    )
    case(
        "R2.8",
        "grand-challenge job whose relative_path is absolute (not listed)",
        EV,
        setup=escaping_job("abs"),
        has=("predictions.json",),
    )

    # ---- R2.9 numbers that train to NaN, reuse by content, a run still training ------------------
    for value in ("1e999", "nan", "-inf"):
        case(
            "R2.9",
            f"train --set optim.lr={value}" + (" (not listed)" if value != "1e999" else ""),
            ["train", "{tmp}/tiny.yaml", "--run-dir", "{tmp}/new", "--set", f"optim.lr={value}", "--quiet"],
            setup=finished_run,
            has=("optim.lr",),
        )

    def rewritten_same_stat(ctx) -> None:
        img = ctx.tmp / "img.tif"
        write_tiff(img, tile_pixels(256), mpp=0.25)
        first(ctx, "detect", img, "--out", ctx.tmp / "out")
        st = img.stat()
        data = bytearray(img.read_bytes())
        data[-100:] = bytes(255 - b for b in data[-100:])
        img.write_bytes(bytes(data))
        os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))

    case(
        "R2.9",
        "input rewritten with its size and mtime restored: recomputed",
        [*DET, "{tmp}/img.tif"],
        setup=rewritten_same_stat,
        expect="ok",
        check=_recomputed,
    )

    def training_alive(ctx) -> None:
        finished_run(ctx)
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        ctx.vars["pid"] = sleeper.pid
        import socket

        (ctx.tmp / "run" / "training.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": sleeper.pid}))

    def stop_sleeper(ctx, r):
        os.kill(ctx.vars["pid"], signal.SIGKILL)
        return None

    case(
        "R2.9",
        "mine hard on a run whose training process is alive",
        ["mine", "hard", "{tmp}/run", "--rounds", "1"],
        setup=training_alive,
        has=("run", "training"),
        check=stop_sleeper,
    )

    # ---- R2.10 grand-challenge mode on a stack --------------------------------------------------
    def gc_input(src: str, name: str):
        def setup(ctx) -> None:
            (ctx.tmp / "in" / "images").mkdir(parents=True)
            shutil.copy(DATA / src, ctx.tmp / "in" / "images" / name)

        return setup

    GC = ["detect", "--grand-challenge", "--gc-input", "{tmp}/in", "--gc-output", "{tmp}/o"]
    case("R2.10", "--grand-challenge on a 16-page stack", GC, setup=gc_input(STACK, "s.tiff"), has=("s.tiff",))

    def two_page_stack(ctx) -> None:
        import tifffile

        (ctx.tmp / "in" / "images").mkdir(parents=True)
        px = tile_pixels(256)
        tifffile.imwrite(ctx.tmp / "in" / "images" / "s.tif", np.stack([px, px[::-1]]), photometric="rgb")

    case("R2.10", "--grand-challenge on a 2-page stack (not listed)", GC, setup=two_page_stack, has=("s.tif",))

    # ---- R2.11 CSV cells that a spreadsheet would run --------------------------------------------
    def formula_input(name: str):
        def setup(ctx) -> None:
            shutil.copy(DATA / PATCH, ctx.tmp / name)

        return setup

    def no_formula(ctx, r):
        for f in (ctx.tmp / "out").glob("*.csv"):
            for row in csv.reader(f.open(encoding="utf-8", errors="surrogateescape")):
                bad = [c for c in row if c and (c[0] in "=+@\t\r" or (c[0] == "-" and not _number(c)))]
                if bad:
                    return f"{f.name} holds {bad[0]!r}"
        return None

    for name in ("=HYPERLINK(1).jpg", "+1+1.jpg", "@SUM(1).jpg"):
        case(
            "R2.11",
            f"input named {name}: no formula cell in summary.csv or the point table",
            [*DET, "{tmp}/" + name, "--mpp", "0.25"],
            setup=formula_input(name),
            expect="ok",
            check=no_formula,
        )

    def formula_model(ctx) -> None:
        shutil.copy(ROOT / "mitodet/weights/default-ca-rgb.pt", ctx.tmp / "-2+3.pt")

    case(
        "R2.11",
        "model file named -2+3.pt (not listed)",
        [*P, "-m", "{tmp}/-2+3.pt"],
        setup=formula_model,
        expect="ok",
        check=no_formula,
    )

    # ---- R2.12 names printed safely ---------------------------------------------------------------
    def raw_control(ctx, r):
        text = r.out + r.err
        if "\x1b" in text:
            return "raw escape sequence printed"
        forged = [line for line in r.err.splitlines() if line.startswith("error: forged")]
        return "a forged error line" if forged else None

    case(
        "R2.12",
        "file name with a terminal colour escape",
        [*DET, "{tmp}/x\x1b[31mred.jpg", "--mpp", "0.25"],
        setup=formula_input("x\x1b[31mred.jpg"),
        expect="ok",
        check=raw_control,
    )
    case(
        "R2.12",
        "missing file whose name holds a newline and 'error: forged'",
        [*DET, "{tmp}/a\nerror: forged.jpg", "--mpp", "0.25"],
        has=("a\\nerror: forged.jpg",),
        check=raw_control,
    )
    case(
        "R2.12",
        "file name with a carriage return and a bell (not listed)",
        [*DET, "{tmp}/a\rb\x07.jpg", "--mpp", "0.25"],
        setup=formula_input("a\rb\x07.jpg"),
        expect="ok",
        check=lambda c, r: "raw control character printed" if "\r" in r.out + r.err or "\x07" in r.out else None,
    )

    # ---- R2.13 absurd JSON ------------------------------------------------------------------------
    deep = "[" * 100_000 + "]" * 100_000
    huge = '{"007.tiff": [[0.37' + "1" * 400 + ", 0.75, 0]]}"
    big_int = '{"007.tiff": [[' + "9" * 400 + ", 0.75, 0]]}"
    case("R2.13", "evaluate: truth nested 100000 deep", EV, setup=lambda c: eval_inputs(c, raw_truth=deep),
         has=("truth.json",))  # fmt: skip
    case(
        "R2.13",
        "evaluate: truth with a 400-digit integer",
        EV,
        setup=lambda c: eval_inputs(c, raw_truth=big_int),
        has=("truth.json",),
    )
    case(
        "R2.13",
        "evaluate: truth with a 400-digit fraction (read as a float)",
        EV,
        setup=lambda c: eval_inputs(c, raw_truth=huge),
        expect="ok",
    )
    case(
        "R2.13",
        "data stats on a truth nested 100000 deep",
        ["data", "stats", "{tmp}/deep.json"],
        setup=_write("deep.json", deep),
        has=("deep.json",),
    )

    def damaged_leftover(ctx) -> None:
        (ctx.tmp / "out").mkdir()
        (ctx.tmp / "out" / "A00_01_0.mitotic-figures.json").write_text(deep)

    case(
        "R2.13",
        "detect with a damaged leftover A00_01_0.mitotic-figures.json in --out: recomputed",
        P,
        setup=damaged_leftover,
        expect="ok",
        check=lambda c, r: None if "1 done" in r.out else f"not recomputed: {r.out_lines[-1:]}",
    )
    case(
        "R2.13",
        "evaluate: prediction file with a 400-digit probability exponent (not listed)",
        EV,
        setup=lambda c: eval_inputs(
            c,
            truth=REAL_TRUTH,
            raw_pred='{"type": "Multiple points", "points": [{"name": "mitotic figure", "point": [0.37, 0.75, 0], '
            '"probability": 1e' + "9" * 400 + "}]}",
        ),
        has=("007.mitotic-figures.json",),
    )

    # ---- R2.14 consoles that cannot print ² or µ; names that are not UTF-8 -----------------------
    def ascii_console(ctx):
        env = {"PYTHONIOENCODING": "ascii", "LC_ALL": "C", "LANG": "C"}
        return run_cli(_fmt(P, ctx), ctx.tmp, env=env)

    case(
        "R2.14",
        "detect on an ASCII console (PYTHONIOENCODING=ascii)",
        [],
        run=ascii_console,
        expect="ok",
        check=lambda c, r: None if "mm" in r.out else "no totals line",
    )

    def latin1_name(ctx):
        src = os.fsencode(ctx.tmp) + b"/caf\xe9.jpg"
        shutil.copy(DATA / PATCH, src)
        out = os.fsencode(ctx.tmp / "out")
        args = [b"detect", src, b"--mpp", b"0.25", b"--out", out]
        code = "import sys; from mitodet.cli.main import run; sys.exit(run(sys.argv[1:]))"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable.encode(), b"-c", code.encode(), *args], capture_output=True, env=env)
        return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"),
                      time.perf_counter() - t0)  # fmt: skip

    def all_outputs(ctx, r):
        names = sorted(os.fsdecode(n) for n in os.listdir(os.fsencode(ctx.tmp / "out")))
        want = [".mitotic-figures.json", ".csv", ".geojson"]
        missing = [w for w in want if not any(n.endswith(w) and n.startswith("caf") for n in names)]
        return f"missing caf*{missing[0]}" if missing else None

    case("R2.14", "file name caf\\xe9.jpg (Latin-1, not UTF-8)", [], run=latin1_name, expect="ok", check=all_outputs)
    case(
        "R2.14",
        "evaluate on an ASCII console: the table's µ and ² (not listed)",
        [],
        setup=lambda c: eval_inputs(c, truth=REAL_TRUTH),
        run=lambda c: run_cli(_fmt(EV, c), c.tmp, env={"PYTHONIOENCODING": "ascii"}),
        expect="ok",
    )

    # ---- R2.15 --ray where nothing listens ---------------------------------------------------------
    def quick(limit: float):
        return lambda c, r: None if r.seconds < limit else f"took {r.seconds:.0f} s"

    case(
        "R2.15",
        "--ray 127.0.0.1:1 (nothing listening): one line within 30 s",
        [*P, "--ray", "127.0.0.1:1"],
        has=("127.0.0.1:1",),
        check=quick(30),
        timeout=120,
    )
    case(
        "R2.15",
        "--ray ray://127.0.0.1:1 (client address, nothing listening; not listed)",
        [*P, "--ray", "ray://127.0.0.1:1"],
        has=("127.0.0.1:1",),
        check=quick(30),
        timeout=120,
    )

    # ---- R2.16 a cache folder that cannot be written -----------------------------------------------
    def cache_at(where: str):
        def run(ctx):
            cache = "/sys/mitodet-cache" if where == "ro" else str(ctx.tmp / "cache")
            if where == "file":
                Path(cache).write_text("a file, not a folder")
            return ctx.run([*_fmt(P, ctx), "--backend", "onnx", "--no-atypical"], env={"MITODET_CACHE": cache})

        return run

    case(
        "R2.16",
        "--backend onnx with a read-only cache folder (/sys, read-only even for root)",
        [],
        run=cache_at("ro"),
        expect="ok",
        timeout=300,
    )
    case(
        "R2.16",
        "--backend onnx with $MITODET_CACHE a file (not listed)",
        [],
        run=cache_at("file"),
        expect="ok",
        timeout=300,
    )

    # ---- R2.17 disk full, every input failed, SIGTERM ---------------------------------------------
    def disk_full(ctx):
        code = (
            "import errno, sys, mitodet.io.atomic as a\n"
            "real = a.atomic_path\n"
            "def full(*x, **k):\n"
            "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
            "import builtins\n"
            "orig_open = builtins.open\n"
            f"OUT = {str(ctx.tmp / 'out')!r}\n"
            "def fake_open(f, mode='r', *x, **k):\n"
            "    fh = orig_open(f, mode, *x, **k)\n"
            "    if ('w' in mode or 'a' in mode) and str(f).startswith(OUT):\n"
            "        fh.close()\n"
            "        full()\n"
            "    return fh\n"
            "builtins.open = fake_open\n"
            "from mitodet.cli.main import run\n"
            f"sys.exit(run({_fmt(P, ctx)!r}))\n"
        )
        return py(ctx, code)

    def names_output_no_temp(ctx, r):
        errs = [line for line in r.err_lines if line.startswith("error:")]
        unnamed = [e for e in errs if "/out/" not in e or "No space left" not in e]
        if unnamed:
            return f"an error that does not name its output: {unnamed[0][:80]}"
        if "input(s)" not in r.out:
            return "no totals line"
        return no_temps(ctx.tmp / "out")

    case(
        "R2.17",
        "disk full while detect writes (ENOSPC injected): each output named, totals, no temp",
        [],
        run=disk_full,
        lines=2,  # the input's outputs, then summary.csv
        check=names_output_no_temp,
    )

    def no_missing_summary(ctx, r):
        for line in r.out_lines + r.err_lines:
            if "summary:" in line:
                path = line.split("summary:")[1].strip().rstrip(")")
                if not Path(path).is_file() and not (ctx.tmp / path).is_file():
                    return f"names {path}, which does not exist"
        return None

    case(
        "R2.17",
        "every input failed: no line naming a summary.csv that does not exist",
        [*DET, "{tmp}/z.jpg", "--mpp", "0.25"],
        setup=_write("z.jpg", b""),
        has=("z.jpg",),
        check=no_missing_summary,
    )

    def sigterm(ctx):
        return _interrupt(ctx, signal.SIGTERM)

    case(
        "R2.17",
        "SIGTERM during detection: one line, exit 143, nothing half-written",
        [],
        run=sigterm,
        code=143,
        has=("terminated",),
        check=lambda c, r: no_temps(c.tmp / "out"),
    )
    case(
        "R2.17",
        "detect --out in a read-only place (/sys; not listed): one line naming it",
        ["detect", "--out", "/sys/mitodet-out", "{data}/" + PATCH, "--mpp", "0.25"],
        has=("/sys/mitodet-out",),
    )

    # ---- R2.18 library chatter --------------------------------------------------------------------
    def quiet_stderr(ctx, r):
        return f"stderr: {r.err_lines[0][:80]!r}" if r.err_lines else None

    def ro_home(ctx):  # /sys: read-only even for root
        env = {"HOME": "/sys", "XDG_CACHE_HOME": "", "MITODET_CACHE": str(ctx.tmp / "cache")}
        return ctx.run([*_fmt(P, ctx), "--backend", "onnx", "--no-atypical"], env=env)

    case(
        "R2.18",
        "--backend onnx with a read-only HOME: nothing on stderr",
        [],
        run=ro_home,
        expect="ok",
        check=quiet_stderr,
        timeout=300,
    )
    case(
        "R2.18",
        "detect with HOME unset and no cache dir (not listed): nothing on stderr",
        [],
        run=lambda c: c.run(
            [*_fmt(P, c), "--backend", "onnx", "--no-atypical"],
            env={"HOME": "/nonexistent", "XDG_CACHE_HOME": "/nonexistent/cache", "MITODET_CACHE": ""},
        ),
        expect="ok",
        check=quiet_stderr,
        timeout=300,
    )


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


add_cases()
