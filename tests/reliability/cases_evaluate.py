"""Item 6: evaluate checks its input."""

from __future__ import annotations

import json
import shutil

from tests.reliability.harness import DATA, GT_2025, Ctx, Result, case
from tests.reliability.hostile import _write, eval_inputs, midog_doc, real_png

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
