"""``mitodet model`` commands: list, summary and export of the P4 ResNet."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.table import Table

from mitodet.errors import MitodetError

model_app = typer.Typer(help="The P4 rotation-invariant ResNet: configurations, summary, export.",
                        no_args_is_help=True)
console = Console()


def _parse_overrides(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MitodetError("--set", f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _resolve(name_or_path: str, overrides: dict):
    """A registered name (with overrides) or a checkpoint file -> model."""
    from mitodet.model import create_model, list_models, load_checkpoint

    if name_or_path in list_models():
        return create_model(name_or_path, **overrides).eval()
    if Path(name_or_path).suffix in (".pt", ".pth", ".ckpt") or Path(name_or_path).exists():
        if overrides:
            raise MitodetError("--set", "overrides apply to a configuration name, not a checkpoint")
        return load_checkpoint(name_or_path)[0]
    raise MitodetError(None, f"unknown model {name_or_path!r}; choose from {', '.join(list_models())} "
                             "or give a checkpoint file")


@model_app.command("list")
def list_cmd() -> None:
    """List the registered model configurations."""
    from mitodet.model import create_model, list_models
    from mitodet.model.registry import model_spec

    table = Table(title="registered models")
    for col in ("name", "params", "conv layers", "rf", "stride", "description"):
        table.add_column(col, justify="right" if col in ("params", "conv layers", "rf", "stride") else "left")
    for name in list_models():
        m = create_model(name)
        table.add_row(name, f"{sum(p.numel() for p in m.parameters()):,}", str(m.n_layers),
                      str(m.receptive_field), str(m.stride), model_spec(name).description)
    console.print(table)


@model_app.command("summary")
def summary_cmd(
    name: str = typer.Argument(..., help="configuration name (see `mitodet model list`) or checkpoint file"),
    set_: list[str] = typer.Option(None, "--set", help="override KEY=VALUE, e.g. --set width=12"),
) -> None:
    """Print parameters, FLOPs per output pixel, receptive field and stride of a model."""
    from mitodet.model.summary import summarize

    s = summarize(_resolve(name, _parse_overrides(set_)))
    table = Table(title=f"model {s['name']} ({s['class']})", show_header=False)
    rows = [
        ("parameters", f"{s['params']:,}"),
        ("convolution layers", str(s["conv_layers"])),
        ("receptive field", f"{s['receptive_field']} x {s['receptive_field']} px"),
        ("stride", f"{s['stride']} px"),
        ("offset of output cell (0, 0)", f"{s['offset']} px"),
        ("FLOPs per output pixel (dense)", f"{s['flops_per_output_pixel'] / 1e6:.3f} M"),
        ("FLOPs per input pixel (dense)", f"{s['flops_per_input_pixel'] / 1e3:.1f} k"),
        ("FLOPs per rf x rf patch", f"{s['flops_per_patch'] / 1e6:.1f} M"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)


@model_app.command("export")
def export_cmd(
    name: str = typer.Argument(..., help="checkpoint file (or a configuration name: random weights)"),
    onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write"),
    set_: list[str] = typer.Option(None, "--set", help="override KEY=VALUE for a configuration name"),
) -> None:
    """Fold P4 filters and batch norm into plain convolutions, write ONNX and check it."""
    import numpy as np
    import torch

    from mitodet.model.export import export_onnx, fold

    model = _resolve(name, _parse_overrides(set_))
    folded = fold(model)
    export_onnx(folded, onnx)
    n = model.receptive_field + 8 * model.stride
    x = torch.rand(1, 3, n, n, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
        d_fold = float((folded(x).numpy() - ref).__abs__().max())
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    d_onnx = float(np.abs(sess.run(None, {"image": x.numpy()})[0] - ref).max())
    console.print(f"wrote {onnx} ({onnx.stat().st_size / 1e3:.0f} kB); on a {n}x{n} input, max |logit "
                  f"difference| vs the original: folded {d_fold:.2e}, ONNX Runtime {d_onnx:.2e} "
                  f"(logits up to {np.abs(ref).max():.2f})")


def _read_rgb(path: Path, size: int):
    """An image file -> [1, 3, H, W] float in [0, 1], top-left crop of at most size x size."""
    import numpy as np
    import torch

    from mitodet.io.image import read_image

    arr, _ = read_image(path, mpp=0.25)  # spacing is irrelevant here; conversions and errors are read_image's
    arr = arr[:size, :size].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None]


@model_app.command("check")
def check_cmd(
    name: str = typer.Argument(..., help="checkpoint file or configuration name (random weights)"),
    image: Path = typer.Option(..., "--image", help="an RGB image (PNG/JPEG/TIFF) to check on"),
    size: int = typer.Option(256, help="crop the image to at most SIZE x SIZE (top-left)"),
) -> None:
    """Check on a real image: 90° rotations rotate the output map, dense == patch-wise, folded == original."""
    import torch

    from mitodet.model.export import fold

    model = _resolve(name, {})
    x = _read_rgb(image, size)
    h, w = (n - (n - model.receptive_field) % 2 for n in x.shape[-2:])  # valid (even-aligned) size
    if h < model.receptive_field or w < model.receptive_field:
        raise MitodetError(image, f"smaller than the receptive field ({model.receptive_field} px)")
    x = x[..., :h, :w].contiguous()
    rf, s = model.receptive_field, model.stride
    with torch.no_grad():
        y = model(x)
        scale = float(y.abs().max())
        rows = []
        for k in (1, 2, 3):
            d = float((model(torch.rot90(x, k, (-2, -1))) - torch.rot90(y, k, (-2, -1))).abs().max())
            rows.append((f"rotation {90 * k}°: output map rotates", d))
        gi = torch.Generator().manual_seed(0)
        cells = [(int(torch.randint(0, y.shape[2], (1,), generator=gi)), int(torch.randint(0, y.shape[3], (1,), generator=gi)))
                 for _ in range(8)]
        patches = torch.cat([x[..., s * i : s * i + rf, s * j : s * j + rf] for i, j in cells])
        pw = model(patches)[:, :, 0, 0]
        d = float((pw - torch.stack([y[0, :, i, j] for i, j in cells])).abs().max())
        rows.append(("dense == patch-wise (8 cells)", d))
        rows.append(("folded == original", float((fold(model)(x) - y).abs().max())))
    table = Table(title=f"{name} on {image.name} ({h}x{w} -> {y.shape[2]}x{y.shape[3]} cells; "
                        f"max |logit| {scale:.3g})")
    table.add_column("check")
    table.add_column("max |difference|", justify="right")
    table.add_column("relative", justify="right")
    table.add_column("result")
    ok = True
    for label, d in rows:
        rel = d / max(scale, 1.0)
        ok &= rel <= 1e-4
        table.add_row(label, f"{d:.2e}", f"{rel:.1e}", "ok" if rel <= 1e-4 else "FAILED")
    console.print(table)
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.add_typer(model_app, name="model")
