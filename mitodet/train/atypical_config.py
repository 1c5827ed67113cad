"""Settings of the atypical-vs-normal classifier's training (``mitodet train-atypical``).

The augmentation and optimiser sections are the detector's own (:mod:`mitodet.train.config`):
the same colour protocols (CA-RGB / CA-OD), flips, elastic deformation, SGD with momentum and
a cosine cyclic learning rate.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field

from mitodet.classify.data import WINDOW
from mitodet.errors import MitodetError
from mitodet.model import list_models
from mitodet.schema import DEFAULT_MPP
from mitodet.train.config import AugmentCfg, ModelCfg, OptimCfg, _Strict, read_settings, validate_settings


class CropDataCfg(_Strict):
    crops: str | None = None  # midog21_crops root (``atypical`` column)
    atnorm: str | None = None  # atnorm_md root (``atypical`` column)
    split_file: str | None = None  # a split.json (ids); crops it does not list are split by the rule
    val_fraction: float = Field(0.2, gt=0, lt=1)
    window: int = Field(WINDOW, ge=16)  # px at the model spacing kept around each figure
    input: int = Field(96, ge=16)  # model input side (px); the rest of the window is room for shifts
    model_mpp: float = Field(DEFAULT_MPP, gt=0)


class CropTrainCfg(_Strict):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=2)  # half atypical, half normal (class-balanced batches)
    steps_per_epoch: int | None = Field(None, ge=1)  # default: one pass over the training crops
    time_budget_s: float | None = Field(None, gt=0)
    tta: bool = True  # validation and prediction average the crop and its mirror image


class AtypicalConfig(_Strict):
    name: str = "atypical"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    out: str = "runs"
    model: ModelCfg = Field(default_factory=lambda: ModelCfg(name="atypical-fast"))
    data: CropDataCfg = Field(default_factory=CropDataCfg)
    augment: AugmentCfg = Field(default_factory=AugmentCfg)
    optim: OptimCfg = Field(default_factory=lambda: OptimCfg(lr=0.01, cycle_epochs=10))
    train: CropTrainCfg = Field(default_factory=CropTrainCfg)


def atypical_config(raw: dict, source: str = "config", check_paths: bool = True) -> AtypicalConfig:
    """Validate ``raw`` (one line naming ``source`` on failure)."""
    cfg = validate_settings(AtypicalConfig, raw, source)
    if cfg.model.name not in list_models():
        raise MitodetError(source, f"model.name: unknown model {cfg.model.name!r}")
    if cfg.data.input + 2 * cfg.augment.shift > cfg.data.window:
        raise MitodetError(source, f"data.input + 2 x augment.shift exceeds data.window ({cfg.data.window} px)")
    if check_paths:
        for key, p in [
            ("data.crops", cfg.data.crops),
            ("data.atnorm", cfg.data.atnorm),
            ("data.split_file", cfg.data.split_file),
            ("model.init", cfg.model.init),
        ]:
            if p is not None and not Path(p).exists():
                raise MitodetError(source, f"{key}: path {p} does not exist (relative to the cwd {os.getcwd()})")
        if not (cfg.data.crops or cfg.data.atnorm):
            raise MitodetError(source, "no labelled crops: set data.crops and/or data.atnorm")
    return cfg


def load_atypical_config(path: str | os.PathLike, overrides=(), check_paths: bool = True) -> AtypicalConfig:
    """Read a YAML config, apply ``KEY=VALUE`` overrides, validate."""
    return atypical_config(read_settings(path, overrides), str(path), check_paths)


def dump_atypical_config(cfg: AtypicalConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
