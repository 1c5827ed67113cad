"""Checkpoints: registry name + overrides + fp32 state dict + free-form metadata.

Everything needed to rebuild the network offline; written atomically; loaded with
``weights_only=True`` (no pickled code runs from a checkpoint file).
"""

from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from mitodet.errors import MitodetError
from mitodet.io.atomic import atomic_path
from mitodet.io.image import check_mpp
from mitodet.model.registry import create_model, list_models
from mitodet.model.resnet import ResNet
from mitodet.resample import FILTERS

FORMAT = "mitodet-model/1"


def safe_load(path: str | os.PathLike, what: str = "checkpoint", map_location="cpu"):
    """``torch.load`` with ``weights_only=True``: tensors and plain Python values only, so no code
    in the file can run. The one place mitodet calls ``torch.load``. A file holding anything else
    (a pickled object: possibly code) or a damaged file is a one-line MitodetError naming it."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():  # weights_only refused an object: never unpickle it
            raise MitodetError(
                path,
                f"refused: not a {what} of tensors and plain values (it holds Python objects, which could run code)",
            ) from None
        raise MitodetError(path, f"not a {what} (not a torch file: {_first_line(err)})") from None
    except Exception as err:  # torch raises many types for a damaged file
        raise MitodetError(
            path, f"not a readable {what} (damaged or truncated? {type(err).__name__}: {_first_line(err)})"
        ) from None


def _first_line(err: Exception) -> str:
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines()  # torch colours its text
    return lines[0] if lines else "unreadable"


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
    payload = safe_load(path, "checkpoint", map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MitodetError(path, f"not a mitodet model checkpoint (expected format {FORMAT})")
    config = payload.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise MitodetError(path, "checkpoint has no model configuration (config.name)")
    if not isinstance(payload.get("state_dict"), dict):
        raise MitodetError(path, "checkpoint has no weights (state_dict)")
    meta = check_meta(payload.get("meta"), path)
    config = dict(config)
    try:
        model = create_model(config.pop("name"), **config)
    except MitodetError as err:  # unknown name or bad setting: say which file asked for it
        raise MitodetError(path, err.problem) from None
    except (RuntimeError, TypeError, ValueError, AssertionError) as err:
        raise MitodetError(path, f"cannot build the model {payload['config']}: {str(err).splitlines()[0]}") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, ValueError, AttributeError) as err:
        raise MitodetError(
            path, f"weights do not fit the model {payload['config']}: {str(err).splitlines()[0]}"
        ) from None
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu").eval()
    return model, meta


def check_meta(meta, path: str | os.PathLike) -> dict:
    """The metadata of a checkpoint, with the values inference relies on checked (one line naming
    the file): ``mpp`` a plausible spacing, ``threshold`` a probability, ``interpolation`` known."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise MitodetError(path, f"checkpoint metadata is a {type(meta).__name__}, not a mapping")
    meta = dict(meta)
    if meta.get("mpp") is not None:
        try:
            meta["mpp"] = check_mpp(meta["mpp"], str(path))
        except MitodetError as err:
            raise MitodetError(path, f"model spacing (meta.mpp): {err.problem}") from None
    t = meta.get("threshold")
    if t is not None:
        try:
            ok = not isinstance(t, bool) and math.isfinite(float(t)) and 0.0 <= float(t) <= 1.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise MitodetError(path, f"stored threshold {t!r} (meta.threshold) is not a probability in [0, 1]")
        meta["threshold"] = float(t)
    interp = meta.get("interpolation")
    if interp is not None and interp not in FILTERS:
        raise MitodetError(path, f"unknown interpolation {interp!r} (meta.interpolation); known: {', '.join(FILTERS)}")
    return meta


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
