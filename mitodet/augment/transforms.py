"""The paper's augmentation protocol, batched in torch on the training device.

Spatial shifting (done by the sampler, which moves the window centre), flips, elastic
deformation and a linear colour transform in RGB space (CA-RGB) or optical-density
space (CA-OD). All random parameters are drawn on the CPU from one ``torch.Generator``
(small tensors: a few numbers per sample), so a run is reproducible and resumable
bit-exactly on any device; the pixel work happens on the device.

Flips and the elastic field are folded into ONE ``grid_sample`` call that maps the
gathered window (rf + 2*margin pixels wide) to the rf x rf model input. The elastic
field is a coarse random control grid upsampled bicubically (a smooth displacement
field); kornia's ``RandomElasticTransform`` was passed over because it blurs a
full-resolution noise field with a large Gaussian kernel per call (slower) and draws
from the global RNG (breaks the bit-exact resume).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mitodet.stain.od import od_to_rgb_torch, rgb_to_od_torch


@dataclass
class AugParams:
    """Per-sample random parameters of one batch (CPU tensors)."""

    flip: torch.Tensor  # [B, 2] of +-1 (x, y)
    field: torch.Tensor  # [B, 2, g, g] elastic control-point displacements, px
    color: torch.Tensor  # [B, 3, 4] affine colour map (3x3 matrix | bias)

    elastic: bool = True  # False when every field is zero (decided on the CPU: no device sync)

    def to(self, device) -> AugParams:
        nb = device is not None and torch.device(device).type == "cuda"
        return AugParams(
            self.flip.to(device, non_blocking=nb),
            self.field.to(device, non_blocking=nb),
            self.color.to(device, non_blocking=nb),
            self.elastic,
        )


def color_params(cfg) -> tuple[str, object]:
    """(space, ColorCfg) for the configured protocol (``space`` is 'rgb', 'od' or 'none')."""
    if cfg.protocol == "ca-rgb":
        return "rgb", cfg.rgb
    if cfg.protocol == "ca-od":
        return "od", cfg.od
    return "none", None


def sample_params(n: int, cfg, gen: torch.Generator) -> AugParams:
    """Draw the augmentation parameters of ``n`` samples from ``gen`` (an AugmentCfg)."""
    g = cfg.elastic.grid
    flip = torch.ones(n, 2)
    if cfg.flip:
        flip = torch.where(torch.rand(n, 2, generator=gen) < 0.5, -1.0, 1.0)
    field = torch.randn(n, 2, g, g, generator=gen) * cfg.elastic.alpha
    on = (torch.rand(n, generator=gen) < cfg.elastic.p).float()
    field = field * on[:, None, None, None]
    space, c = color_params(cfg)
    color = torch.zeros(n, 3, 4)
    color[:, :, :3] = torch.eye(3)
    if space != "none":
        eye = torch.eye(3)
        noise = torch.randn(n, 3, 4, generator=gen)
        color[:, :, :3] += noise[:, :, :3] * (eye * c.scale + (1 - eye) * c.mix)
        color[:, :, 3] = noise[:, :, 3] * c.bias
    return AugParams(flip, field, color, bool(on.any()) and cfg.elastic.alpha > 0)


def identity_params(n: int, grid: int = 4) -> AugParams:
    color = torch.zeros(n, 3, 4)
    color[:, :, :3] = torch.eye(3)
    return AugParams(torch.ones(n, 2), torch.zeros(n, 2, grid, grid), color, False)


def warp(windows: torch.Tensor, params: AugParams, out: int) -> torch.Tensor:
    """Flip + elastic-deform float windows [B,3,S,S] into [B,3,out,out] (centre of the window)."""
    b, _, s, _ = windows.shape
    dev, dt = windows.device, windows.dtype
    # pixel coordinates of the output grid relative to the window centre
    r = torch.arange(out, device=dev, dtype=dt) - (out - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    flip = params.flip.to(dev, dt)
    x = xx[None] * flip[:, 0, None, None]
    y = yy[None] * flip[:, 1, None, None]
    field = params.field.to(dev, dt)
    if params.elastic:
        disp = F.interpolate(field, size=(out, out), mode="bicubic", align_corners=True)
        x = x + disp[:, 0]
        y = y + disp[:, 1]
    # to grid_sample's normalised coordinates (align_corners=True: -1/+1 = first/last pixel centre)
    half = (s - 1) / 2
    grid = torch.stack([x / half, y / half], dim=-1)
    return F.grid_sample(windows, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def recolor(x: torch.Tensor, params: AugParams, space: str) -> torch.Tensor:
    """Apply the per-sample affine colour map to RGB in [0,1], in RGB or OD space."""
    if space == "none":
        return x
    m = params.color.to(x.device, x.dtype)
    if space == "od":
        x = rgb_to_od_torch(x * 255.0)
    y = torch.einsum("bij,bjhw->bihw", m[:, :, :3], x) + m[:, :, 3, None, None]
    if space == "od":
        return od_to_rgb_torch(y.clamp_min(0.0)) / 255.0
    return y.clamp(0.0, 1.0)


def augment(windows: torch.Tensor, params: AugParams, cfg, out: int) -> torch.Tensor:
    """uint8 windows [B,3,S,S] -> augmented float32 model input [B,3,out,out] in [0,1]."""
    x = windows.float() / 255.0
    x = warp(x, params, out)
    space, _ = color_params(cfg)
    return recolor(x, params, space)


def center_crop(windows: torch.Tensor, out: int) -> torch.Tensor:
    """uint8 windows -> float [0,1] centre crop (no augmentation: validation)."""
    s = windows.shape[-1]
    a = (s - out) // 2
    return windows[..., a : a + out, a : a + out].float() / 255.0
