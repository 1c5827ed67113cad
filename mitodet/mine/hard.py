"""Hard-negative mining (paper; Cireşan et al. 2013): drop the easy negatives, retrain, repeat.

Round 0 is a finished training run. Round r scores every training negative of round
r-1 with its ``best.pt``, keeps the hardest ``1 - drop_quantile`` (highest mitosis
score), writes them to ``round<r>/negatives.csv`` and trains ``round<r>/`` on them, by
default starting from round r-1's best weights (fine-tuning: cheaper than from scratch
and what a fixed GPU budget allows; ``from_scratch=True`` re-initialises). The split and
the validation patches never change, so validation numbers are comparable across rounds.
Rounds stop after ``rounds`` or when val F1 has not risen for ``patience`` rounds.
Per-round negative count, val loss and F1 go to ``hard_mining.csv`` and ``hard_mining.png``.

Dense runs (``train.mode: dense``) mine the same way in spirit: the previous round's network is
run densely over every training image, its false detections (local maxima farther than the
ignore radius from every labelled mitosis) are ranked by probability, the highest
``1 - drop_quantile`` become "hard" window anchors (``round<r>/negatives.csv``,
``data.hard_negatives``), and ``sampling.negative_mix.hard`` of the negative windows are
drawn around them. The round's score is the one its best.pt was chosen by (F1 at density).
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mitodet.errors import MitodetError
from mitodet.infer.detector import Detector
from mitodet.io.atomic import atomic_path, write_csv
from mitodet.model import load_checkpoint
from mitodet.model.export import fold
from mitodet.schema import um_to_px
from mitodet.train.config import override_config
from mitodet.train.device import pick_device
from mitodet.train.engine import EpochCallback, StepCallback, ValCallback, score_windows
from mitodet.train.patches import KINDS, Pool
from mitodet.train.run import prepare_data, train
from mitodet.train.rundir import read_metrics, read_run_config, training_pid

log = logging.getLogger(__name__)

FIELDS = ["round", "negatives", "fraction_of_original", "val_loss", "val_f1", "val_auc", "score", "run"]
HARD_SHARE = 0.3  # share of the negative windows anchored on mined false detections (dense rounds)


@dataclass
class HardResult:
    rows: list[dict]
    best_round: int
    best_f1: float
    best_checkpoint: Path
    table: Path


@torch.no_grad()
def score_negatives(model, pool: Pool, rf: int, batch: int = 1024, bf16: bool = False) -> torch.Tensor:
    """Mitosis probability of every negative centre of ``pool`` (no augmentation), CPU float32 [Q]."""
    out = []
    for i in range(0, pool.neg.shape[0], batch):
        c = pool.neg[i : i + batch]
        win = pool.gather(c[:, 0], c[:, 1], c[:, 2], rf)
        out.append(score_windows(model, win, rf, batch, bf16))
    return torch.cat(out) if out else torch.zeros(0)


def keep_hardest(scores: torch.Tensor, drop_quantile: float) -> torch.Tensor:
    """Indices of the negatives kept: the ``1 - drop_quantile`` with the highest scores (ties by index)."""
    n = scores.shape[0]
    k = max(1, int(round(n * (1.0 - drop_quantile)))) if n else 0
    order = torch.argsort(scores, descending=True, stable=True)
    return order[:k].sort().values


def write_negatives(path: Path, pool: Pool, keep: torch.Tensor, scores: torch.Tensor) -> int:
    neg, kind = pool.neg.cpu(), pool.neg_kind.cpu()

    def rows():
        for i in keep.tolist():
            img, y, x = neg[i].tolist()
            yield [pool.ids[img], x, y, KINDS[int(kind[i])], f"{float(scores[i]):.5f}"]

    return write_csv(path, ["image", "x", "y", "kind", "score"], rows())


def _plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = [x["round"] for x in rows]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].bar(r, [x["negatives"] for x in rows])
    ax[0].set_xlabel("round")
    ax[0].set_ylabel("training negatives")
    ax[1].plot(r, [x["val_loss"] for x in rows], "s-", label="val loss")
    ax[1].plot(r, [x["val_f1"] for x in rows], "^-", label="val F1")
    ax[1].set_xlabel("round")
    ax[1].legend()
    for a in ax:
        a.set_xticks(r)
    fig.suptitle("hard-negative mining")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _best_metrics(run_dir: Path, select: str = "loss") -> dict:
    """Validation numbers of the epoch best.pt came from; ``score`` is what rounds compare
    (patch F1, or F1 at density when best.pt was chosen by it)."""
    rows = [r for r in read_metrics(run_dir) if r["val_loss"]]
    key = {"f1_density": "val_f1_density", "f1_mean": "val_f1_mean"}.get(select)
    if key:
        rows = [r for r in rows if r.get(key)]
    if not rows:
        raise MitodetError(run_dir, "run has no validation metrics (hard mining needs a validation split)")
    if key:
        b = max(rows, key=lambda r: float(r[key]))
        score = float(b[key])
    else:
        b = min(rows, key=lambda r: float(r["val_loss"]))
        score = float(b["val_f1"])
    return {
        "val_loss": float(b["val_loss"]),
        "val_f1": float(b["val_f1"]),
        "val_auc": float(b["val_auc"] or "nan"),
        "score": score,
    }


@torch.no_grad()
def mine_dense(model, pool: Pool, mpp: float, drop_quantile: float, ignore_um: float, floor: float = 0.1):
    """False detections of ``model`` on every pool image: (image index, y, x, probability) of the
    local maxima >= ``floor`` farther than ``ignore_um`` from every labelled mitosis, the highest
    ``1 - drop_quantile`` of them."""
    det = Detector(fold(copy.deepcopy(model).float().eval()), mpp=mpp, threshold=0.5, floor=floor)
    radius = um_to_px(ignore_um, mpp)
    found = []
    mitoses = pool.mitoses.cpu().numpy() if pool.mitoses is not None else None
    for i in range(len(pool.ids)):
        image = pool.image(i)
        if min(image.shape[:2]) < 8:
            continue
        for d in det.candidates(image, mpp):
            if mitoses is not None:
                mf = mitoses[i]
                if np.any(np.hypot(mf[:, 0] - d.y, mf[:, 1] - d.x) <= radius):
                    continue
            found.append((i, int(round(d.y)), int(round(d.x)), d.probability))
    found.sort(key=lambda t: -t[3])
    return found[: max(1, int(round(len(found) * (1.0 - drop_quantile))))] if found else []


def write_hard(path: Path, pool: Pool, found) -> int:
    return write_csv(
        path, ["image", "x", "y", "kind", "score"], ([pool.ids[i], x, y, "hard", f"{p:.5f}"] for i, y, x, p in found)
    )


def hard_negative_mining(
    run: str | os.PathLike,
    rounds: int = 3,
    drop_quantile: float = 0.5,
    patience: int = 1,
    from_scratch: bool = False,
    overrides=(),
    max_minutes: float | None = None,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    on_val: ValCallback | None = None,
) -> HardResult:
    """Run the mining rounds on top of the finished run ``run`` (see module docstring);
    ``on_step``, ``on_epoch`` and ``on_val`` follow each round's training as in
    :func:`mitodet.train.run.train`.

    Long because each round (detect, select, retrain) is spelled out in order."""
    base = Path(run)
    if not (0.0 < drop_quantile < 1.0):
        raise MitodetError("--drop-quantile", f"{drop_quantile}: expected a fraction between 0 and 1")
    if rounds < 1 or patience < 1:
        raise MitodetError("--rounds/--patience", "both must be at least 1")
    for need in ("config.yaml", "split.json", "best.pt", "metrics.csv"):
        if not (base / need).is_file():
            raise MitodetError(base, f"not a finished training run (no {need})")
    pid = training_pid(base)
    if pid is not None:
        raise MitodetError(base, f"is still training (process {pid}); mine it once that run has finished")
    cfg0 = override_config(read_run_config(base), list(overrides), str(base / "config.yaml"))  # e.g. device=cpu
    device = pick_device(cfg0.device)
    bf16 = cfg0.train.amp == "bf16"
    dense = cfg0.train.mode == "dense"
    select = cfg0.val.select
    rows = [{"round": 0, "run": str(base), **_best_metrics(base, select)}]
    prev_dir, prev_cfg = base, cfg0
    original = None
    best_i, stale = 0, 0
    table = base / "hard_mining.csv"
    for r in range(1, rounds + 1):
        _, pool, _ = prepare_data(prev_cfg, prev_dir, resume=True)
        if original is None:
            original = int(pool.neg.shape[0])
            rows[0]["negatives"] = original
            rows[0]["fraction_of_original"] = 1.0
        rdir = base / f"round{r}"
        if dense:
            model, _ = load_checkpoint(prev_dir / "best.pt")
            found = mine_dense(model, pool, cfg0.data.model_mpp, drop_quantile, cfg0.dense.ignore_radius_um)
            n = write_hard(rdir / "negatives.csv", pool, found)
            log.info(f"round {r}: {n} false detections of round {r - 1} become hard-negative anchors")
            mix = prev_cfg.sampling.negative_mix.get("hard") or HARD_SHARE
            sets = [f"data.hard_negatives=[{rdir / 'negatives.csv'}]", f"sampling.negative_mix.hard={mix}"]
        else:
            model, _ = load_checkpoint(prev_dir / "best.pt", map_location=device)
            pool = pool.to(device)
            scores = score_negatives(model, pool, model.receptive_field, cfg0.val.batch_size * 4, bf16)
            keep = keep_hardest(scores, drop_quantile)
            n = write_negatives(rdir / "negatives.csv", pool, keep, scores)
            log.info(f"round {r}: kept {n} of {scores.shape[0]} negatives (scores >= {float(scores[keep].min()):.4f})")
            sets = [f"data.keep_negatives={rdir / 'negatives.csv'}"]
        del pool, model
        sets += [
            f"split.file={base / 'split.json'}",
            f"name={cfg0.name}-hard{r}",
            f"model.init={'null' if from_scratch else prev_dir / 'best.pt'}",
        ]
        cfg = override_config(prev_cfg, sets + list(overrides), str(base / "config.yaml"))
        train(cfg, run_dir=rdir, max_minutes=max_minutes, on_step=on_step, on_epoch=on_epoch, on_val=on_val)
        m = _best_metrics(rdir, select)
        rows.append({"round": r, "negatives": n, "fraction_of_original": n / original, "run": str(rdir), **m})
        write_csv(table, FIELDS, rows)
        _plot(base / "hard_mining.png", rows)
        if m["score"] > rows[best_i]["score"]:
            best_i, stale = r, 0
        else:
            stale += 1
        log.info(f"round {r}: {n} negatives ({n / original:.1%}), val loss {m['val_loss']:.4f}, score {m['score']:.3f}")
        prev_dir, prev_cfg = rdir, cfg
        if stale >= patience:
            break
    write_csv(table, FIELDS, rows)
    _plot(base / "hard_mining.png", rows)
    best_dir = Path(rows[best_i]["run"])
    return HardResult(rows, best_i, rows[best_i]["score"], best_dir / "best.pt", table)
