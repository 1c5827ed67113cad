"""Item 11: evaluate reads what users annotate."""

from __future__ import annotations

import json
import shutil

from tests.reliability.cases_evaluate import GOOD_PT
from tests.reliability.harness import ICPR_MPP, Ctx, Result, case, f1_of, run_cli
from tests.reliability.hostile import icpr_truth, midog_doc


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
