"""Tissue mask on a low-resolution picture of an image or slide: which area holds tissue.

Rules (on the picture at :data:`MASK_MPP` µm/px, lightly smoothed):

- tissue is stained: HSV saturation above Otsu's threshold of the saturation histogram, capped
  at :data:`SAT_MAX` (so an image that is all tissue, where Otsu would split pale from dark
  tissue, keeps its pale stroma) and floored at :data:`SAT_MIN`; and optical density above
  :data:`OD_MIN` (glass, however tinted, is near 0);
- pen ink and marking dye are not tissue: hues H&E never has (green, teal, blue: 60-245°) and
  near-black pixels;
- specks under :data:`MIN_OBJECT_MM2` are dropped and holes under :data:`MAX_HOLE_MM2` filled.

The mask decides which tiles the networks run on (its area plus a small margin), and its area is
the denominator of the counts per mm², in detection, calibration and validation alike (one rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage.color import rgb2hsv
from skimage.filters import threshold_otsu

from mitodet.io.atomic import atomic_path
from mitodet.stain.od import rgb_to_od

MASK_MPP = 4.0  # µm per mask pixel (a 40x slide shrunk 16 times)
MAX_MASK_SIDE = 4096  # coarser spacing for larger slides
SAT_MIN, SAT_MAX = 0.04, 0.10
OD_MIN = 0.06  # mean optical density of the three channels
INK_HUE = (60.0, 245.0)  # degrees: H&E is pink to purple (250-360, 0-30)
BLACK = 0.20  # HSV value below this is ink or debris, not stained tissue
MIN_OBJECT_MM2 = 0.002
MAX_HOLE_MM2 = 0.01
NEED_MARGIN_UM = 16.0  # networks also run this close to tissue


def mask_mpp_for(width_um: float, height_um: float) -> float:
    """The mask spacing for an image of this size: :data:`MASK_MPP`, coarser for huge slides."""
    return max(MASK_MPP, max(width_um, height_um) / MAX_MASK_SIDE)


@dataclass
class TissueMask:
    """Boolean tissue mask at ``mpp`` µm/px; mask pixel (0, 0) covers the image's top-left corner."""

    mask: np.ndarray
    mpp: float
    ink: np.ndarray | None = None  # pixels excluded as pen ink / dye

    @property
    def area_mm2(self) -> float:
        return float(self.mask.sum()) * (self.mpp / 1000.0) ** 2

    @property
    def fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    def outlines(self, image_mpp: float, min_mm2: float = MIN_OBJECT_MM2) -> list[np.ndarray]:
        """The outer boundary of each tissue piece of at least ``min_mm2``, as closed (N, 2)
        polygons of (x, y) in pixels of an image of spacing ``image_mpp`` (holes not cut out),
        simplified to within one mask pixel."""
        from skimage.measure import approximate_polygon, find_contours, label

        f = self.mpp / image_mpp  # image px per mask px
        pieces = label(ndi.binary_fill_holes(self.mask))
        out = []
        for i, sl in enumerate(ndi.find_objects(pieces), 1):
            piece = pieces[sl] == i
            if piece.sum() * (self.mpp / 1000.0) ** 2 < min_mm2:
                continue
            padded = np.pad(piece, 1)  # closed contours, also along the image edge
            ring = max(find_contours(padded.astype(float), 0.5), key=len)
            ring = approximate_polygon(ring, tolerance=1.0)
            rows, cols = ring[:, 0] - 1 + sl[0].start, ring[:, 1] - 1 + sl[1].start
            xy = np.stack([(cols + 0.5) * f - 0.5, (rows + 0.5) * f - 0.5], axis=1)
            out.append(xy)
        return out

    def need(self) -> np.ndarray:
        """The mask grown by :data:`NEED_MARGIN_UM`: where the networks run."""
        r = max(1, round(NEED_MARGIN_UM / self.mpp))
        return ndi.binary_dilation(self.mask, iterations=r) if self.mask.any() else self.mask

    def need_fn(
        self, image_mpp: float, x0: float = 0.0, y0: float = 0.0
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``need(cx, cy)`` for an image of spacing ``image_mpp`` whose pixel (0, 0) is at
        (``x0``, ``y0``) of the same spacing in the masked picture (e.g. a slide region)."""
        need = self.need()
        f = image_mpp / self.mpp
        h, w = need.shape

        def fn(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
            j = np.clip(np.floor((np.asarray(cx) + x0 + 0.5) * f).astype(int), 0, w - 1)
            i = np.clip(np.floor((np.asarray(cy) + y0 + 0.5) * f).astype(int), 0, h - 1)
            inside_x = (np.asarray(cx) + x0 + 0.5) * f < w
            inside_y = (np.asarray(cy) + y0 + 0.5) * f < h
            return need[np.ix_(i, j)] & inside_y[:, None] & inside_x[None, :]

        return fn

    def covers(self, x_px: float, y_px: float, image_mpp: float) -> bool:
        """Whether pixel (x, y) of an image of spacing ``image_mpp`` is tissue."""
        f = image_mpp / self.mpp
        i, j = int((y_px + 0.5) * f), int((x_px + 0.5) * f)
        return 0 <= i < self.mask.shape[0] and 0 <= j < self.mask.shape[1] and bool(self.mask[i, j])


def tissue_mask(picture: np.ndarray, mpp: float) -> TissueMask:
    """Tissue mask of ``picture`` (HxWx3 uint8 at ``mpp`` µm/px, e.g. a slide's low level)."""
    if picture.ndim != 3 or picture.shape[2] != 3 or picture.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 picture, got {picture.dtype} {picture.shape}")
    smooth = ndi.uniform_filter(picture.astype(np.float32), size=(3, 3, 1)) if min(picture.shape[:2]) > 8 else picture
    smooth = np.clip(smooth, 0, 255).astype(np.uint8)
    hsv = rgb2hsv(smooth)
    hue, sat, val = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    od = rgb_to_od(smooth).mean(axis=2)
    t = SAT_MAX
    if np.ptp(sat) > 0:
        t = float(np.clip(threshold_otsu(sat), SAT_MIN, SAT_MAX))
    stained = (sat > t) & (od > OD_MIN)
    ink = (stained & (hue > INK_HUE[0]) & (hue < INK_HUE[1])) | (val < BLACK)
    mask = stained & ~ink
    px_mm2 = (mpp / 1000.0) ** 2
    mask = _large(mask, MIN_OBJECT_MM2 / px_mm2)
    mask = ~_large(~mask, MAX_HOLE_MM2 / px_mm2)  # small holes filled
    return TissueMask(mask, float(mpp), ink)


def _large(mask: np.ndarray, min_pixels: float) -> np.ndarray:
    """``mask`` without its 8-connected components smaller than ``min_pixels``."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask
    keep = np.bincount(labels.ravel()) >= min_pixels
    keep[0] = False
    return keep[labels]


def write_mask_png(path, tm: TissueMask) -> None:
    """The mask as a black/white PNG (white = tissue), one pixel per mask pixel."""
    with atomic_path(path) as tmp:
        Image.fromarray(tm.mask.astype(np.uint8) * 255).save(tmp, format="PNG", optimize=True)


def shrink(image: np.ndarray, f: float) -> np.ndarray:
    """``image`` scaled by ``f`` <= 1 (antialiased), at least one pixel a side."""
    if f >= 1:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))


def image_tissue(image: np.ndarray, mpp: float) -> TissueMask:
    """The tissue mask of an image in memory (at least 256 mask pixels on its longer side)."""
    h, w = image.shape[:2]
    m_mpp = min(mask_mpp_for(w * mpp, h * mpp), max(mpp, max(w, h) * mpp / 256))
    f = mpp / m_mpp
    small = shrink(image, f)
    return tissue_mask(small, mpp * w / small.shape[1])
