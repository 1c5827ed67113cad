"""The paper's augmentation protocol, batched in torch on the training device, plus the
robustness transforms measured for unseen scanners (scale, stain vectors, blur, sharpening,
resampling).

Spatial shifting (done by the sampler, which moves the window centre), flips, scale jitter and
elastic deformation are folded into ONE ``grid_sample`` call that maps the gathered window to
the model input. Colour follows: stain-vector jitter (optional), then the paper's linear colour
transform in RGB space (CA-RGB) or optical-density space (CA-OD); then blur or sharpening and
down-/up-sampling with a random filter (optional). All random parameters are drawn on the CPU
from one ``torch.Generator`` (a few numbers per sample), so a run is reproducible and resumable
bit-exactly on any device; the pixel work happens on the device.

The elastic field is a coarse random control grid upsampled bicubically (a smooth displacement
field); kornia's ``RandomElasticTransform`` was passed over because it blurs a full-resolution
noise field with a large Gaussian kernel per call (slower) and draws from the global RNG (breaks
the bit-exact resume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mitodet.stain.od import od_to_rgb_torch, rgb_to_od_torch

RESAMPLE_MODES = ("bilinear", "bicubic", "nearest")


@dataclass
class AugParams:
    """Per-sample random parameters of one batch (CPU tensors)."""

    flip: torch.Tensor  # [B, 2] of +-1 (x, y)
    field: torch.Tensor  # [B, 2, g, g] elastic control-point displacements, px
    color: torch.Tensor  # [B, 3, 4] affine colour map (3x3 matrix | bias)
    elastic: bool = True  # False when every field is zero (decided on the CPU: no device sync)
    scale: torch.Tensor | None = None  # [B] zoom (>1 shows more tissue, smaller)
    stain: torch.Tensor | None = None  # [B, 3, 3] OD-space map (row vectors: od' = od @ M), set by the sampler
    blur: torch.Tensor | None = None  # [B] Gaussian sigma in px (0 = none)
    sharpen: torch.Tensor | None = None  # [B] unsharp-mask gain (0 = none)
    resample: torch.Tensor | None = None  # [B] down-sampling factor (1 = none)
    resample_mode: torch.Tensor | None = None  # [B] index into RESAMPLE_MODES

    def to(self, device) -> AugParams:
        nb = device is not None and torch.device(device).type == "cuda"

        def mv(t):
            return None if t is None else t.to(device, non_blocking=nb)

        return AugParams(
            mv(self.flip),
            mv(self.field),
            mv(self.color),
            self.elastic,
            mv(self.scale),
            mv(self.stain),
            self.blur,
            self.sharpen,
            self.resample,
            self.resample_mode,
        )


def color_params(cfg) -> tuple[str, object]:
    """(space, ColorCfg) for the configured protocol (``space`` is 'rgb', 'od' or 'none')."""
    if cfg.protocol == "ca-rgb":
        return "rgb", cfg.rgb
    if cfg.protocol == "ca-od":
        return "od", cfg.od
    return "none", None


def window_margin(cfg, out: int) -> int:
    """Extra pixels a gathered window needs on each side of ``out`` for zoom-out and elastic."""
    zoom = int(math.ceil(out * cfg.scale / 2)) if cfg.scale > 0 else 0
    elastic = int(math.ceil(2.5 * cfg.elastic.alpha)) + 1 if cfg.elastic.p > 0 else 0
    return zoom + elastic


def sample_params(n: int, cfg, gen: torch.Generator) -> AugParams:
    """Draw the augmentation parameters of ``n`` samples from ``gen`` (an AugmentCfg).

    The draws of the paper's transforms come first and in the original order, so configs that
    leave the robustness transforms off reproduce earlier runs exactly."""
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
    p = AugParams(flip, field, color, bool(on.any()) and cfg.elastic.alpha > 0)
    if cfg.scale > 0:
        p.scale = 1.0 + (torch.rand(n, generator=gen) * 2 - 1) * cfg.scale
    if cfg.blur.p > 0:
        on = torch.rand(n, generator=gen) < cfg.blur.p
        p.blur = torch.where(on, 0.3 + torch.rand(n, generator=gen) * max(0.0, cfg.blur.sigma - 0.3), 0.0)
    if cfg.sharpen.p > 0:
        on = torch.rand(n, generator=gen) < cfg.sharpen.p
        amount = torch.rand(n, generator=gen) * cfg.sharpen.amount
        if p.blur is not None:
            on &= p.blur == 0  # one of blur and sharpening per sample
        p.sharpen = torch.where(on, amount, 0.0)
    if cfg.resample.p > 0:
        on = torch.rand(n, generator=gen) < cfg.resample.p
        p.resample = torch.where(on, 1.2 + torch.rand(n, generator=gen) * max(0.0, cfg.resample.factor - 1.2), 1.0)
        p.resample_mode = torch.randint(0, len(RESAMPLE_MODES), (n,), generator=gen)
    return p


def identity_params(n: int, grid: int = 4) -> AugParams:
    color = torch.zeros(n, 3, 4)
    color[:, :, :3] = torch.eye(3)
    return AugParams(torch.ones(n, 2), torch.zeros(n, 2, grid, grid), color, False)


def sampling_grid(params: AugParams, s: int, out: int, device, dtype=torch.float32) -> torch.Tensor:
    """grid_sample coordinates [B, out, out, 2] (x, y in [-1, 1], align_corners) that map each
    output pixel to the gathered window of side ``s``: flip, zoom, then elastic displacement."""
    r = torch.arange(out, device=device, dtype=dtype) - (out - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    flip = params.flip.to(device, dtype)
    x = xx[None] * flip[:, 0, None, None]
    y = yy[None] * flip[:, 1, None, None]
    if params.scale is not None:
        z = params.scale.to(device, dtype)[:, None, None]
        x, y = x * z, y * z
    if params.elastic:
        disp = F.interpolate(params.field.to(device, dtype), size=(out, out), mode="bicubic", align_corners=True)
        x = x + disp[:, 0]
        y = y + disp[:, 1]
    half = (s - 1) / 2  # to grid_sample's normalised coordinates (-1/+1 = first/last pixel centre)
    return torch.stack([x / half, y / half], dim=-1)


def warp(windows: torch.Tensor, params: AugParams, out: int) -> torch.Tensor:
    """Flip + zoom + elastic-deform float windows [B,3,S,S] into [B,3,out,out] (centre of the window)."""
    grid = sampling_grid(params, windows.shape[-1], out, windows.device, windows.dtype)
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


def restain(x: torch.Tensor, stain: torch.Tensor) -> torch.Tensor:
    """Apply per-sample OD-space maps ``od' = od @ M`` ([B,3,3]) to RGB in [0,1]."""
    od = rgb_to_od_torch(x * 255.0)
    od = torch.einsum("bchw,bcd->bdhw", od, stain.to(x.device, x.dtype))
    return od_to_rgb_torch(od.clamp_min(0.0)) / 255.0


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample Gaussian blur (separable, reflect border); sigma [B] in px, 0 leaves a sample as it is."""
    b, c, h, w = x.shape
    radius = max(1, int(math.ceil(3 * float(sigma.max()))))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    s = sigma.to(x.device, x.dtype).clamp_min(1e-3)[:, None]
    k = torch.exp(-0.5 * (t[None] / s) ** 2)
    k = torch.where(sigma.to(x.device)[:, None] > 0, k, (t[None] == 0).to(x.dtype))  # identity kernel
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [B*C, K]
    y = F.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k[:, None, None, :], groups=b * c)
    y = F.conv2d(y, k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def sharpen_blur(x: torch.Tensor, params: AugParams) -> torch.Tensor:
    """Gaussian blur and unsharp-mask sharpening, per sample (an optics/focus difference)."""
    if params.blur is not None and bool((params.blur > 0).any()):
        x = _gaussian_blur(x, params.blur)
    if params.sharpen is not None and bool((params.sharpen > 0).any()):
        soft = _gaussian_blur(x, torch.where(params.sharpen > 0, 1.0, 0.0))
        x = x + params.sharpen.to(x.device, x.dtype)[:, None, None, None] * (x - soft)
    return x


def resample_jitter(x: torch.Tensor, params: AugParams) -> torch.Tensor:
    """Down-sample by each sample's factor (area average) and up-sample back with its filter, as
    a coarser scan read at the model spacing is."""
    if params.resample is None or not bool((params.resample > 1).any()):
        return x
    out = x.clone()
    h, w = x.shape[-2:]
    for i in torch.nonzero(params.resample > 1).flatten().tolist():
        f = float(params.resample[i])
        small = F.interpolate(x[i : i + 1], size=(max(2, round(h / f)), max(2, round(w / f))), mode="area")
        mode = RESAMPLE_MODES[int(params.resample_mode[i])]  # type: ignore[index]
        kw = {} if mode == "nearest" else {"align_corners": False}
        out[i : i + 1] = F.interpolate(small, size=(h, w), mode=mode, **kw)
    return out


def augment(windows: torch.Tensor, params: AugParams, cfg, out: int) -> torch.Tensor:
    """uint8 windows [B,3,S,S] -> augmented float32 model input [B,3,out,out] in [0,1]."""
    x = windows.float() / 255.0
    x = warp(x, params, out)
    if params.stain is not None:
        x = restain(x, params.stain)
    space, _ = color_params(cfg)
    x = recolor(x, params, space)
    x = sharpen_blur(x, params)
    x = resample_jitter(x, params)
    return x.clamp(0.0, 1.0)


def center_crop(windows: torch.Tensor, out: int) -> torch.Tensor:
    """uint8 windows -> float [0,1] centre crop (no augmentation: validation)."""
    s = windows.shape[-1]
    a = (s - out) // 2
    return windows[..., a : a + out, a : a + out].float() / 255.0


def stain_maps(src: torch.Tensor, dst: torch.Tensor, mix: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """OD-space maps ``M = inv(V_src) @ diag(gains) @ V_new`` [B,3,3] for :func:`restain`.

    ``src`` / ``dst``: [B,3,3] stain matrices (rows: hematoxylin, eosin, residual unit OD vectors),
    e.g. a window's own Macenko vectors and another training image's. The new H and E vectors lie
    a fraction ``mix`` [B] of the way from src to dst (renormalised); the residual stays
    orthogonal to them. ``gains`` [B,3] scale the stain concentrations."""
    he = src[:, :2] + mix[:, None, None] * (dst[:, :2] - src[:, :2])
    he = he / he.norm(dim=2, keepdim=True).clamp_min(1e-6)
    res = torch.linalg.cross(he[:, 0], he[:, 1])
    res = res / res.norm(dim=1, keepdim=True).clamp_min(1e-6)
    res = res * torch.sign((res * src[:, 2]).sum(1, keepdim=True) + 1e-12)  # keep the residual's sign
    new = torch.cat([he, res[:, None]], dim=1)
    return torch.linalg.inv(src) @ torch.diag_embed(gains) @ new
