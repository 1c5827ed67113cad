"""``mitodet model`` commands: list, summary and export of the P4 ResNet."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from mitodet.cli import options
from mitodet.cli.ui import out_console as console
from mitodet.cli.ui import print_table
from mitodet.cli.ui import table as ui_table
from mitodet.errors import MitodetError

model_app = options.group("The P4 rotation-invariant ResNet: configurations, summary, export.")


def _parse_overrides(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MitodetError("--set", f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise MitodetError("--set", f"{item!r}: not a valid value ({str(err).splitlines()[0]})") from None
    return out


@model_app.command("list")
def list_cmd() -> None:
    """List the registered model configurations."""
    from mitodet.model import create_model, list_models
    from mitodet.model.registry import model_spec

    table = ui_table(
        "registered models",
        ["name", "params", "conv layers", "rf", "stride", "description"],
        right={"params", "conv layers", "rf", "stride"},
    )
    for name in list_models():
        m = create_model(name)
        table.add_row(
            name,
            f"{sum(p.numel() for p in m.parameters()):,}",
            str(m.n_layers),
            str(m.receptive_field),
            str(m.stride),
            model_spec(name).description,
        )
    print_table(table)


@model_app.command("summary")
def summary_cmd(
    name: str = typer.Argument(..., help="Configuration name (see `mitodet model list`) or checkpoint file."),
    set_: list[str] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Override a setting, e.g. --set width=12."),
) -> None:
    """Print parameters, FLOPs per output pixel, receptive field and stride of a model."""
    from mitodet.model import model_from
    from mitodet.model.summary import summarize

    s = summarize(model_from(name, **_parse_overrides(set_)))
    table = ui_table(f"model {s['name']} ({s['class']})", ["", ""], show_header=False)
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
    print_table(table)


@model_app.command("export")
def export_cmd(
    name: str = typer.Argument(..., help="Checkpoint file (or a configuration name: random weights)."),
    onnx: Path = typer.Option(
        ..., "--onnx", "-o", metavar="FILE", help="ONNX file to write.", callback=options.out_file
    ),  # fmt: skip
    set_: list[str] = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Override a setting of a configuration name."
    ),
) -> None:
    """Fold P4 filters and batch norm into plain convolutions, write ONNX and check it."""
    from mitodet.model import model_from
    from mitodet.model.checks import export_and_check

    r = export_and_check(model_from(name, **_parse_overrides(set_)), onnx)
    console.print(
        f"wrote {onnx} ({onnx.stat().st_size / 1e3:.0f} kB); on a {r['size']}x{r['size']} input, "
        f"max |logit difference| vs the original: folded {r['fold']:.2e}, ONNX Runtime {r['onnx']:.2e} "
        f"(logits up to {r['max_logit']:.2f})"
    )


@model_app.command("check")
def check_cmd(
    name: str = typer.Argument(..., help="Checkpoint file or configuration name (random weights)."),
    image: Path = typer.Option(..., "--image", metavar="FILE", help="An RGB image (PNG/JPEG/TIFF) to check on."),
    size: int = typer.Option(
        256,
        help="Crop the image to at most N x N px (top-left), 16-4096.",
        callback=options.number(16, 4096, integer=True),
    ),
) -> None:
    """Check on a real image: 90° rotations rotate the output map, dense == patch-wise, folded == original."""
    import numpy as np
    import torch

    from mitodet.io.image import read_image
    from mitodet.model import model_from
    from mitodet.model.checks import run_checks, valid_crop

    model = model_from(name)
    arr, _ = read_image(image, mpp=0.25)  # spacing is irrelevant here; conversions and errors are read_image's
    x = torch.from_numpy(np.ascontiguousarray(arr[:size, :size], np.float32) / 255.0).permute(2, 0, 1)[None]
    try:
        x = valid_crop(model, x)
    except ValueError as err:
        raise MitodetError(image, str(err)) from None
    rows, scale = run_checks(model, x)
    h, w = x.shape[-2:]
    cells = model.output_size(h), model.output_size(w)
    table = ui_table(
        f"{name} on {image.name} ({h}x{w} -> {cells[0]}x{cells[1]} cells; max |logit| {scale:.3g})",
        ["check", "max |difference|", "relative", "result"],
        right={"max |difference|", "relative"},
    )
    for label, d, rel, ok in rows:
        table.add_row(label, f"{d:.2e}", f"{rel:.1e}", "ok" if ok else "FAILED")
    print_table(table)
    if not all(ok for *_, ok in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.add_typer(model_app, name="model")
