"""Pictures of an unmixing for a person to judge: per-channel PNGs and a colour legend."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_path
from mitodet.io.image import read_image
from mitodet.stain.macenko import StainVectors, macenko_vectors, unmix
from mitodet.stain.od import od_to_rgb

RESIDUAL_SCALE = 0.25  # OD at which the residual colour map saturates


def stain_rgb(conc: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """One stain alone, in its own colour: od_to_rgb(concentration * vector)."""
    return od_to_rgb(np.clip(conc, 0, None)[..., None] * vector[None, None, :])


def residual_rgb(residual: np.ndarray, scale: float = RESIDUAL_SCALE) -> np.ndarray:
    """Signed residual through a diverging colour map (blue < 0 < red, white at 0)."""
    from matplotlib import colormaps

    v = np.clip(residual / scale, -1.0, 1.0) * 0.5 + 0.5
    return (colormaps["RdBu_r"](v)[..., :3] * 255).astype(np.uint8)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp)


def write_unmixing(
    out: str | os.PathLike,
    stem: str,
    rgb: np.ndarray,
    conc: np.ndarray,
    sv: StainVectors,
    scale: float = RESIDUAL_SCALE,
) -> list[Path]:
    """Write ``<stem>_hematoxylin/_eosin/_residual.png`` (full size) and ``<stem>_legend.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    out = Path(out)
    h, e, r = (
        stain_rgb(conc[..., 0], sv.hematoxylin),
        stain_rgb(conc[..., 1], sv.eosin),
        residual_rgb(conc[..., 2], scale),
    )
    paths = [out / f"{stem}_{name}.png" for name in ("hematoxylin", "eosin", "residual", "legend")]
    for p, img in zip(paths, (h, e, r), strict=False):
        _save_png(p, img)

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.6), constrained_layout=True)
    fmt = lambda v: "(" + ", ".join(f"{x:.2f}" for x in v) + ")"  # noqa: E731
    panels = [
        (rgb, "original"),
        (h, f"hematoxylin {fmt(sv.hematoxylin)}"),
        (e, f"eosin {fmt(sv.eosin)}"),
        (r, f"residual {fmt(sv.residual)}"),
    ]
    for ax, (img, title) in zip(axes, panels, strict=False):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    # Swatches: each stain at OD concentration 1, so a reader sees which colour is which.
    for ax, vec in zip(axes[1:3], (sv.hematoxylin, sv.eosin), strict=False):
        sw = od_to_rgb(vec[None, None, :] * np.linspace(0.1, 1.5, 64)[None, :, None])
        ax.inset_axes([0.0, -0.1, 1.0, 0.06]).imshow(np.repeat(sw, 4, axis=0), aspect="auto")
        ax.child_axes[-1].set_axis_off()
    sm = plt.cm.ScalarMappable(norm=Normalize(-scale, scale), cmap="RdBu_r")
    fig.colorbar(sm, ax=axes[3], fraction=0.046, label="residual OD (outside the H-E plane)")
    fig.suptitle(
        f"{stem}: Macenko unmixing, H-E angle {sv.angle_deg:.1f} deg, tissue {100 * sv.tissue_fraction:.0f}%",
        fontsize=10,
    )
    with atomic_path(paths[3]) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return paths


def unmix_file(
    image: str | os.PathLike,
    out: str | os.PathLike,
    beta: float = 0.15,
    alpha: float = 1.0,
    scale: float = RESIDUAL_SCALE,
) -> tuple[StainVectors, np.ndarray, list[Path]]:
    """Unmix an image file and write its channel pictures to ``out``.

    Returns (stain vectors, |residual| percentiles 50/99/100, written paths); an image the
    unmixing cannot handle is a one-line error naming the file."""
    rgb, _ = read_image(image, check_spacing=False)  # the spacing plays no part here
    try:
        sv = macenko_vectors(rgb, beta=beta, alpha=alpha)
    except MitodetError as err:
        raise MitodetError(image, err.problem) from None
    conc = unmix(rgb, sv)
    paths = write_unmixing(out, Path(image).stem, rgb, conc, sv, scale)
    return sv, np.percentile(np.abs(conc[..., 2]), [50, 99, 100]), paths
