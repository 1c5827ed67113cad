"""Macenko stain-vector estimation and H / E / residual unmixing.

Macenko et al., ISBI 2009: keep tissue pixels (OD above ``beta`` in every channel),
project their OD onto the plane of the two largest principal directions, and take
robust extreme angles (percentiles ``alpha`` and ``100 - alpha``) as the hematoxylin
and eosin directions. The residual direction is the unit normal of the H-E plane:
OD outside that plane (pigment, ink, other non-H&E absorbers) shows up there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mitodet.errors import MitodetError
from mitodet.stain.od import rgb_to_od

MIN_TISSUE_PIXELS = 500  # fewer tissue pixels than this: no stable estimate
MIN_TISSUE_FRACTION = 0.002
MIN_STAIN_ANGLE_DEG = 3.0  # H and E closer than this: one stain, not two
MAX_FIT_PIXELS = 250_000  # subsample (deterministic stride) above this for speed


class StainError(MitodetError, ValueError):
    """The image cannot be unmixed (no tissue, a single stain)."""

    def __init__(self, problem: str, source=None):
        super().__init__(source, problem)


class NoTissueError(StainError):
    pass


class SingleStainError(StainError):
    pass


@dataclass(frozen=True)
class StainVectors:
    """Unit OD-space directions (R, G, B components) of one image's stains."""

    hematoxylin: np.ndarray
    eosin: np.ndarray
    residual: np.ndarray
    tissue_fraction: float = 1.0

    @property
    def matrix(self) -> np.ndarray:
        """3x3 float32, rows H, E, residual: ``od = conc @ matrix``."""
        return np.stack([self.hematoxylin, self.eosin, self.residual]).astype(np.float32)

    @property
    def angle_deg(self) -> float:
        """Angle between the H and E directions."""
        c = float(np.clip(self.hematoxylin @ self.eosin, -1.0, 1.0))
        return float(np.degrees(np.arccos(c)))


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float64)


def tissue_mask(od: np.ndarray, beta: float = 0.15) -> np.ndarray:
    """Tissue pixels: OD above ``beta`` in every channel (Macenko's transparent-pixel rule)."""
    return np.all(od > beta, axis=-1)


def macenko_vectors(rgb: np.ndarray, beta: float = 0.15, alpha: float = 1.0) -> StainVectors:
    """Estimate H, E and residual directions of one RGB image (HxWx3 uint8).

    Raises :class:`NoTissueError` when too few pixels pass the OD threshold and
    :class:`SingleStainError` when the angle spread of the tissue OD is degenerate.
    """
    flat = np.asarray(rgb).reshape(-1, 3)
    # OD > beta  <=>  I < 256 * 10**-beta - 1: threshold the intensities, convert only what is kept.
    mask = np.all(flat < 256.0 * 10.0 ** (-beta) - 1.0, axis=1)
    n_tissue = int(mask.sum())
    fraction = n_tissue / max(len(flat), 1)
    if n_tissue < MIN_TISSUE_PIXELS or fraction < MIN_TISSUE_FRACTION:
        raise NoTissueError(f"no tissue: {n_tissue} pixels ({100 * fraction:.2f}%) have OD > {beta} in every channel")
    idx = np.flatnonzero(mask)
    if len(idx) > MAX_FIT_PIXELS:  # a deterministic stride: percentiles need no more pixels
        idx = idx[:: -(-len(idx) // MAX_FIT_PIXELS)]
    x = rgb_to_od(flat[idx])
    x = x.astype(np.float64)

    # Principal plane of the tissue OD through the origin (Macenko's SVD of the OD tuples):
    # the uncentred second moment, since OD = concentrations @ stains is linear, not affine.
    # A centred covariance tilts the plane off the origin and leaves a residual offset.
    evals, evecs = np.linalg.eigh(x.T @ x / len(x))
    plane = evecs[:, [2, 1]]  # two largest
    plane *= np.where(plane.sum(axis=0) < 0, -1.0, 1.0)  # point into positive OD
    if evals[1] <= 1e-9 * max(evals[2], 1e-12):
        raise SingleStainError("single stain: the tissue OD spans one direction only")

    proj = x @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, [alpha, 100.0 - alpha])
    v_lo = _unit(plane @ np.array([np.cos(lo), np.sin(lo)]))
    v_hi = _unit(plane @ np.array([np.cos(hi), np.sin(hi)]))
    angle = float(np.degrees(np.arccos(np.clip(v_lo @ v_hi, -1.0, 1.0))))
    if angle < MIN_STAIN_ANGLE_DEG:
        raise SingleStainError(
            f"single stain: the tissue OD directions span only {angle:.1f} degrees (< {MIN_STAIN_ANGLE_DEG})"
        )
    # Hematoxylin absorbs more red than eosin does.
    h, e = (v_lo, v_hi) if v_lo[0] > v_hi[0] else (v_hi, v_lo)
    r = _unit(np.cross(h, e))
    if r.sum() < 0:  # sign: a neutral (grey/black) absorber has positive residual
        r = -r
    return StainVectors(h.astype(np.float32), e.astype(np.float32), r.astype(np.float32), fraction)


def unmix(rgb: np.ndarray, sv: StainVectors) -> np.ndarray:
    """Concentrations (HxWx3 float32: H, E, residual) with ``conc @ sv.matrix == rgb_to_od(rgb)``.

    The residual channel is the signed OD component along the H-E plane's normal.
    """
    od = rgb_to_od(rgb)
    inv = np.linalg.inv(sv.matrix.astype(np.float64)).astype(np.float32)
    return od @ inv


def remix(conc: np.ndarray, sv: StainVectors) -> np.ndarray:
    """Inverse of :func:`unmix`: concentrations -> OD image."""
    return conc @ sv.matrix
