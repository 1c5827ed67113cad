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


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.add_typer(model_app, name="model")
