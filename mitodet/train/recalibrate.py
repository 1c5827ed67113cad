"""``mitodet finetune --calibrate-only``: the pair's thresholds chosen on a lab's own labelled
fields, without training (a minute or two on a CPU, where fine-tuning takes fifteen).

A threshold does not travel between labs (``benchmarks/bench_threshold_transfer.py``), so the
cheapest adaptation is to choose it again on the lab's fields:

1. the labelled images are split by image (seeded; a quarter, with and without mitoses alike,
   for scoring) into choosing and scoring fields;
2. the thresholds are moved on the choosing fields, by one shift in logit space for both models,
   to the best official F1 of the agreement ensemble (or of the one model);
3. the given and the recalibrated models are scored on the scoring fields, which the choice never
   saw, with a bootstrap interval over images;
4. the final thresholds are chosen on every field and written into copies of the checkpoints,
   ``DIR/recalibrated-<model>.pt``, beside ``recalibrate.json`` and ``MODEL_CARD.md``.

Candidates are computed once per image and model; the ensemble's mitotic figures are the pairs
whose two probabilities pass their thresholds, as detection forms them.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mitodet.evaluate.bootstrap import gain_interval
from mitodet.evaluate.matching import score
from mitodet.infer.ensemble import agreement_pairs
from mitodet.infer.run import load_detectors
from mitodet.io.atomic import write_text
from mitodet.io.image import read_image
from mitodet.model.checkpoint import load_checkpoint, save_checkpoint
from mitodet.schema import MATCH_RADIUS_UM, MITOTIC_FIGURE, um_to_px
from mitodet.train.calibrate import PAIR_FLOOR
from mitodet.train.labels import LabelledImage, mitoses_per_mm2

SCORING_FRACTION = 0.25
RULE = "official F1 on the lab's labelled fields (mitodet finetune --calibrate-only)"


@dataclass
class Candidates:
    """One image's labelled mitoses and candidates, in units of the matching radius: rows
    (x, y, p) of one model, or (x, y, pa, pb) of the ensemble's pairs."""

    truth: list[tuple[float, float]]
    rows: np.ndarray


@dataclass
class RecalibrationReport:
    out: Path
    models: list[Path]
    images: int
    choosing: list[str]
    scoring: list[str]
    mitoses: int
    thresholds: list[float]  # final: chosen on every field
    shift: float  # of the final thresholds from the given ones, in logit units
    thresholds_choosing: list[float]  # chosen on the choosing fields, scored on the others
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    interval: tuple[float, float] = (float("nan"), float("nan"))
    final: dict = field(default_factory=dict)  # the final thresholds on every field (chosen there: optimistic)
    seed: int = 0  # of the choosing / scoring split


def candidates(detectors, images: list[LabelledImage]) -> dict[str, Candidates]:
    """Each image's candidates (>= the detector floor) of one model, or the pairs of two."""
    out = {}
    for im in images:
        pixels, _ = read_image(im.path, im.mpp)
        r = um_to_px(MATCH_RADIUS_UM, im.mpp)
        dets = [d.candidates(pixels, im.mpp, PAIR_FLOOR) for d in detectors]
        if len(dets) == 1:
            rows = np.array([(c.x / r, c.y / r, c.probability) for c in dets[0]]).reshape(-1, 3)
        else:
            a, b = dets
            ij = agreement_pairs(a, b, r)
            rows = np.array(
                [((a[i].x + b[j].x) / 2 / r, (a[i].y + b[j].y) / 2 / r, a[i].probability, b[j].probability)
                 for i, j in ij]
            ).reshape(-1, 4)  # fmt: skip
        out[str(im.path)] = Candidates([(p.x / r, p.y / r) for p in im.points if p.label == MITOTIC_FIGURE], rows)
    return out


def called(c: Candidates, thresholds: list[float]) -> list[tuple[float, float]]:
    """The mitotic figures at ``thresholds`` (every probability at or above its own)."""
    keep = np.all(c.rows[:, 2:] >= np.asarray(thresholds), axis=1)
    return [(float(x), float(y)) for x, y in c.rows[keep, :2]]


def scores(cands: dict[str, Candidates], keys: list[str], thresholds: list[float]) -> dict:
    s = score({k: cands[k].truth for k in keys}, {k: called(cands[k], thresholds) for k in keys}, 1.0)
    out = {k: s[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1")}
    out["per_image"] = {k: (v.true_positives, v.false_positives, v.false_negatives) for k, v in s["per_image"].items()}
    return out


def logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def shifted(thresholds: list[float], shift: float) -> list[float]:
    """Every threshold moved by the same ``shift`` in logit space."""
    return [1 / (1 + math.exp(-(logit(t) + shift))) for t in thresholds]


SHIFTS = np.round(np.arange(-6.0, 4.0001, 0.1), 2) + 0.0  # logit units (+ 0.0: no "-0.0" shift); a lab moved ~3


def best_shift(cands: dict[str, Candidates], keys: list[str], given: list[float]) -> float:
    """The one logit shift of all ``given`` thresholds with the best official F1 on ``keys`` (the
    smallest such shift in size, ties broken towards 0).

    One number for the pair, not one threshold per model: a lab moves both models' logits (stain,
    scanner), and a single parameter chosen on a few dozen noisy fields overfits far less than a
    grid of pairs (on MITOS-ATYPIA-14 a free pair chosen on 77 frames lost 0.09 F1 on 19 others)."""
    return best_shift_sources(cands, {"all": keys}, given)


def best_shift_sources(cands: dict[str, Candidates], sources: dict[str, list[str]], given: list[float]) -> float:
    """The one logit shift of all ``given`` thresholds with the best MEAN over ``sources`` (name ->
    image keys) of each source's official F1 (ties: the smallest shift in size).

    Each source counts once, however many figures it holds: the threshold is to hold in a lab
    none of them is, so a slide's 77 fields weigh as much as 361 crops of three scanners, and no
    single lab's look decides it alone (``scripts/recalibrate_bundled.py``)."""
    f1 = [float(np.mean([scores(cands, keys, shifted(given, float(d)))["f1"] for keys in sources.values()]))
          for d in SHIFTS]  # fmt: skip
    best = max(f1)
    return float(min((d for d, f in zip(SHIFTS, f1, strict=True) if f == best), key=abs))


def count_shift(cands: dict[str, Candidates], given: list[float], count: int) -> float:
    """The one logit shift of the ``given`` thresholds at which ``cands`` call ``count`` figures in
    all (the nearest count; ties: the smallest shift in size).

    How a threshold follows its model through more training: the final epochs of ``mitodet
    finetune`` move the logits (on MITOS-ATYPIA-14 by about -2: at the thresholds chosen before
    them the pair called 2 figures on the calibration fields instead of 39, and its test F1 fell
    from 0.492 to 0.138), so the adapted pair keeps the number of figures it called there, which
    needs no labels and restored 0.492."""
    n = [sum(len(called(c, shifted(given, float(d)))) for c in cands.values()) for d in SHIFTS]
    return float(min(zip(SHIFTS, n, strict=True), key=lambda dn: (abs(dn[1] - count), abs(dn[0])))[0])


def given_scores(models: list[Path], images: list[LabelledImage], move: bool = True) -> tuple[dict, dict, dict]:
    """The given pair (or model) on ``images``: at its own thresholds, and (``move``) at them moved
    by the one logit shift best there (what ``--calibrate-only`` gives, chosen on the same fields as
    the adapted pair's thresholds, so equally optimistic) -> (scores, per image (tp, fp, fn), moved
    scores with their ``shift``, or {}). One detection pass; the pairs as detection forms them."""
    dets = load_detectors(models)
    cands = candidates(dets, images)
    keys, given = list(cands), [d.threshold for d in dets]
    s = scores(cands, keys, given)
    moved: dict = {}
    if move:
        shift = best_shift(cands, keys, given)
        moved = {k: v for k, v in scores(cands, keys, shifted(given, shift)).items() if k != "per_image"}
        moved["shift"] = shift
    return {k: v for k, v in s.items() if k != "per_image"}, s["per_image"], moved


def interval_text(interval: tuple[float, float], images: str) -> str:
    """The bootstrap interval of a model card, or why there is none (``images``: which ones)."""
    if interval[0] != interval[0]:  # NaN
        return f"no bootstrap interval (fewer than two {images} images)"
    return f"95 % bootstrap interval over the {images} images [{interval[0]:+.3f}, {interval[1]:+.3f}]"


def split_fields(images: list[LabelledImage], seed: int) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """(choosing, scoring): a seeded quarter of the images with mitoses and of those without for
    scoring; with two or more images with mitoses, each part has one."""
    rng = random.Random(seed)
    scoring = []
    for k, group in enumerate(([im for im in images if im.mitoses], [im for im in images if not im.mitoses])):
        group = sorted(group, key=lambda im: str(im.path))
        rng.shuffle(group)
        n = round(len(group) * SCORING_FRACTION)
        if k == 0 and len(group) >= 2:
            n = min(max(n, 1), len(group) - 1)
        scoring += group[:n]
    if not scoring:  # one image with mitoses: it scores, the others choose
        scoring = [max(images, key=lambda im: im.mitoses)]
    return [im for im in images if im not in scoring], scoring


def recalibrate(
    labelled: list[LabelledImage],
    models: list[Path],
    out: Path,
    seed: int = 0,
    threads: int | None = None,
    note: Callable[[str], None] | None = None,
) -> RecalibrationReport:
    """Recalibrate ``models`` (one, or the pair) on ``labelled`` -> the report (see the module)."""
    say = note or (lambda text: None)
    dets = load_detectors(models, threads=threads)
    choosing, scoring = split_fields(labelled, seed)
    say(f"candidates of {len(models)} model(s) on {len(labelled)} labelled image(s)")
    cands = candidates(dets, labelled)
    keys = lambda ims: [str(im.path) for im in ims]  # noqa: E731
    given = [d.threshold for d in dets]
    chosen = shifted(given, best_shift(cands, keys(choosing), given))
    shift = best_shift(cands, keys(labelled), given)
    final = shifted(given, shift)
    before, after = scores(cands, keys(scoring), given), scores(cands, keys(scoring), chosen)
    rep = RecalibrationReport(
        out, [out / f"recalibrated-{m.stem}.pt" for m in models], len(labelled), keys(choosing), keys(scoring),
        sum(im.mitoses for im in labelled), final, shift, chosen, before, after,
        gain_interval(before.pop("per_image"), after.pop("per_image")),
    )  # fmt: skip
    rep.final = {k: v for k, v in scores(cands, keys(labelled), final).items() if k != "per_image"}
    rep.seed = seed
    out.mkdir(parents=True, exist_ok=True)
    for src, dst, t in zip(models, rep.models, final, strict=True):
        net, meta = load_checkpoint(src)
        meta.update(threshold=t, calibration={"rule": RULE, "images": len(labelled), "from": str(src)})
        save_checkpoint(dst, net, **meta)
    doc = {k: (str(v) if isinstance(v, Path) else v) for k, v in rep.__dict__.items()}
    doc["models"], doc["interval"] = [str(m) for m in rep.models], list(rep.interval)
    write_text(out / "recalibrate.json", json.dumps(doc, indent=1) + "\n")
    write_text(out / "MODEL_CARD.md", model_card(rep, labelled))
    return rep


def model_card(rep: RecalibrationReport, labelled: list[LabelledImage]) -> str:
    spacing = ", ".join(str(s) for s in sorted({round(im.mpp, 4) for im in labelled}))
    thresholds = ", ".join(f"{t:.4f}" for t in rep.thresholds)
    b, a = rep.before, rep.after
    rows = [f"| {n} | {s['tp']} | {s['fp']} | {s['fn']} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} |"
            for n, s in (("given thresholds", b), ("recalibrated", a))]  # fmt: skip
    lines = [
        "# Recalibrated models (mitodet finetune --calibrate-only)",
        "",
        f"- Weights: unchanged. Thresholds moved by {rep.shift:+.1f} in logit space, for the best official F1 on "
        f"{rep.images} labelled images ({rep.mitoses} mitotic figures, {mitoses_per_mm2(labelled):.1f} per mm²; "
        f"spacing {spacing} µm/px): {thresholds}.",
        f"- Measured: thresholds chosen on {len(rep.choosing)} images, scored on the other {len(rep.scoring)}:",
        "",
        "| thresholds | TP | FP | FN | precision | recall | F1 |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"F1 gain {a['f1'] - b['f1']:+.3f} on {b['tp'] + b['fn']} mitotic figures, "
        f"{interval_text(rep.interval, 'scoring')}.",
    ]
    return "\n".join(lines) + "\n"
