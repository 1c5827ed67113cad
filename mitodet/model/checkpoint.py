"""Checkpoints: registry name + overrides + fp32 state dict + free-form metadata.

Everything needed to rebuild the network offline; written atomically; loaded with
``weights_only=True`` (no pickled code runs from a checkpoint file).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_path
from mitodet.model.registry import create_model, list_models
from mitodet.model.resnet import ResNet

FORMAT = "mitodet-model/1"


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **meta) -> Path:
    """Write ``model`` (built by ``create_model``) and JSON-able ``meta`` to ``path``."""
    config = getattr(model, "config", None)
    if not config or "name" not in config:
        raise ValueError("save_checkpoint needs a model built by create_model (model.config)")
    if getattr(model, "folded", False):
        raise ValueError("save the trained model, not its folded copy (fold again after loading)")
    state = {
        k: v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()
        for k, v in model.state_dict().items()
    }
    payload = {"format": FORMAT, "config": dict(config), "state_dict": state, "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[ResNet, dict]:
    """Rebuild the model of a checkpoint (in eval mode) -> ``(model, meta)``.

    Raises ``MitodetError`` for a missing, corrupt or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise MitodetError(path, "checkpoint file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise MitodetError(path, f"not a readable checkpoint ({type(err).__name__}: {err})".splitlines()[0]) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MitodetError(path, f"not a mitodet model checkpoint (expected format {FORMAT})")
    config = dict(payload["config"])
    model = create_model(config.pop("name"), **config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise MitodetError(
            path, f"weights do not fit the model {payload['config']}: {str(err).splitlines()[0]}"
        ) from None
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu").eval()
    return model, dict(payload.get("meta") or {})


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def model_from(name_or_path: str, **overrides) -> ResNet:
    """A registered configuration name (random weights, ``overrides`` applied) or a checkpoint
    file, as an eval-mode model."""
    if name_or_path in list_models():
        return create_model(name_or_path, **overrides).eval()
    if Path(name_or_path).suffix in CHECKPOINT_SUFFIXES or Path(name_or_path).exists():
        if overrides:
            raise MitodetError("--set", "overrides apply to a configuration name, not a checkpoint")
        return load_checkpoint(name_or_path)[0]
    raise MitodetError(
        name_or_path, f"neither a checkpoint file nor a model configuration ({', '.join(list_models())})"
    )
