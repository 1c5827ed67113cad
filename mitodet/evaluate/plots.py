"""PR and FROC curves of an evaluation, as one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mitodet.evaluate.ap import pr_curve  # noqa: E402
from mitodet.evaluate.froc import MAX_FP, froc_curve  # noqa: E402
from mitodet.io.atomic import atomic_path  # noqa: E402


def plot_pr_froc(gts, preds, radius: float, path: str | Path, title: str = "", half: float | None = None) -> None:
    """Write a two-panel PNG: precision-recall (COCO AP matching) and FROC (official matching).

    ``gts``: per image [(x, y)]; ``preds``: per image [(x, y, probability)]; units of ``radius``.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    recall, precision, _, n_gt = pr_curve(gts, preds, **({"half": half} if half else {}))
    if len(recall) and n_gt:
        ax1.step(recall, precision, where="post")
    ax1.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title="precision-recall")
    ax1.grid(alpha=0.3)
    curve = froc_curve(gts, preds, radius)
    if curve is not None:
        _, fppi, sens = curve
        o = fppi.argsort(kind="stable")
        ax2.plot(fppi[o], sens[o], marker=".")
    ax2.set(
        xlabel="mean false positives per image", ylabel="sensitivity", xlim=(0, MAX_FP), ylim=(0, 1.02), title="FROC"
    )
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
