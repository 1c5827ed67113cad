"""``mitodet augment preview``: look at the augmentation protocols on real patches."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

augment_app = typer.Typer(help="Augmentation protocol of the paper (CA-RGB / CA-OD).", no_args_is_help=True)


@augment_app.command("preview")
def preview(
    config: Path = typer.Option(Path("configs/default-ca-rgb.yaml"), help="training config (its augment section and data.crops)"),
    protocol: str = typer.Option("both", help="ca-rgb, ca-od or both"),
    out: Path = typer.Option(Path("augment_preview.png"), help="PNG to write"),
    n: int = typer.Option(8, help="number of real patches (rows)"),
    n_aug: int = typer.Option(7, help="augmented versions per patch and protocol"),
    negatives: bool = typer.Option(False, help="show negative patches instead of mitoses"),
    seed: int = typer.Option(0),
    set_: list[str] = typer.Option([], "--set", help="override a config setting, e.g. augment.rgb.scale=0.2"),
) -> None:
    """Write a PNG grid: each row a real patch (first column) and its augmentations per protocol."""
    import torch

    from mitodet.augment.preview import preview_grid, write_png
    from mitodet.errors import MitodetError
    from mitodet.model import create_model
    from mitodet.train.config import load_config
    from mitodet.train.data import SplitData, labelled_records, train_val_images
    from mitodet.train.patches import build_pool
    from mitodet.train.sampler import BatchSampler

    protos = {"both": ["ca-rgb", "ca-od"], "ca-rgb": ["ca-rgb"], "ca-od": ["ca-od"]}.get(protocol)
    if protos is None:
        raise MitodetError("--protocol", f"{protocol!r}: expected ca-rgb, ca-od or both")
    cfg = load_config(config, set_)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"tissue": [], "negatives": [], "keep_negatives": None})})
    records = labelled_records(cfg)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(records), generator=g)[: max(n * 4, 16)].tolist()
    records = [records[i] for i in sorted(pick)]
    split = SplitData(records, [r.id for r in records], [])
    imgs, _ = train_val_images(cfg, split, quiet=True)
    pool = build_pool(imgs)
    rf = create_model(cfg.model.name).receptive_field
    sampler = BatchSampler(pool, cfg, rf)
    table = pool.neg if negatives else pool.pos
    idx = torch.randperm(table.shape[0], generator=g)[:n]
    c = table[idx]
    win = pool.gather(c[:, 0], c[:, 1], c[:, 2], sampler.window)
    img = preview_grid(win, cfg.augment, protos, rf, n_aug, seed)
    write_png(out, img)
    Console().print(f"wrote {out}: {len(idx)} patches x (1 + {n_aug}) x {', '.join(protos)}  (rf {rf}, window {sampler.window})")


def register(app: typer.Typer) -> None:
    """Add the ``augment`` group to the root app."""
    app.add_typer(augment_app, name="augment")
