"""Stain unmixing: optical density, Macenko stain vectors, H / E / residual channels."""

from mitodet.stain.macenko import (
    NoTissueError,
    SingleStainError,
    StainError,
    StainVectors,
    macenko_vectors,
    remix,
    tissue_mask,
    unmix,
)
from mitodet.stain.od import od_to_rgb, od_to_rgb_torch, rgb_to_od, rgb_to_od_torch

__all__ = [
    "NoTissueError",
    "SingleStainError",
    "StainError",
    "StainVectors",
    "macenko_vectors",
    "od_to_rgb",
    "od_to_rgb_torch",
    "remix",
    "rgb_to_od",
    "rgb_to_od_torch",
    "tissue_mask",
    "unmix",
]
