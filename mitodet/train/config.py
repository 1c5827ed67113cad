"""Training configuration: pydantic models loaded from YAML, overridable with ``--set``.

Every setting of a run lives in one YAML file. Relative paths (data sources, ``out``)
are resolved against the CURRENT WORKING DIRECTORY (not the config file's folder), so
``../shared/data/...`` means the same thing in a config and on the command line.
Bad input (unknown key, wrong type, missing data path) raises ``MitodetError`` naming
the config file, before any work starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mitodet.errors import MitodetError
from mitodet.model import list_models

_M = TypeVar("_M", bound=BaseModel)


class _Strict(BaseModel):
    # allow "model_mpp"; no setting may be inf or nan (optim.lr=1e999 would train to NaN)
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class ModelCfg(_Strict):
    name: str = "fast"  # a registered mitodet.model configuration: tiny | fast | paper | plain-fast
    init: str | None = None  # start from the weights of this checkpoint (e.g. a previous round's best.pt)
    widen: bool = False  # init may be a narrower network of the same depth (new fields start at zero)


class DataCfg(_Strict):
    crops: str | None = None  # midog21_crops root: positives + near-miss negatives inside each crop
    atnorm: str | None = None  # atnorm_md root: MIDOG++ multi-domain crops (centre mitosis labelled only)
    fields: str | None = None  # mitos_atypia14 root, or a fields table (finetune): whole labelled images
    fields_exhaustive: bool = True  # a fields table's labels are exhaustive (every other cell a negative)
    field_grid: int = Field(8, ge=1)  # stride (px) of negative centres in whole fields (kind "field")
    field_oversample: int = Field(1, ge=1)  # each field mitosis is this many positive anchors
    low_confidence_weight: float = Field(0.5, ge=0, le=1)  # weight of a field mitosis of panel confidence < 0.7
    tissue: list[str] = Field(default_factory=list)  # folders/files of unlabelled tissue: random negatives
    negatives: list[str] = Field(default_factory=list)  # negative tables (residual mining)
    annotations: str | None = None  # MIDOG-format json of full images ...
    images_dir: str | None = None  # ... and the folder holding them
    include: dict[str, list[str]] = Field(default_factory=dict)  # keep only these domain values
    exclude: dict[str, list[str]] = Field(default_factory=dict)  # drop these (leave-one-scanner-out)
    keep_negatives: str | None = None  # hard-mining list (csv written by `mitodet mine hard`)
    hard_negatives: list[str] = Field(default_factory=list)  # dense hard-mining anchors (`mitodet mine hard`)
    border: int = Field(16, ge=0)  # negative centres at least this far inside the image (reflect-pad beyond)
    crop_grid: int = Field(8, ge=1)  # stride (px) of candidate negative centres in labelled images
    tissue_grid: int = Field(32, ge=1)  # stride (px) of candidate negative centres in tissue tiles
    tissue_max_brightness: float = Field(0.86, gt=0, le=1)  # drop background (white) tissue centres
    # Spacing rule shared with detection: every source is resampled from its known spacing to
    # model_mpp with the detector's interpolation (mitodet.resample); False reads native pixels.
    resample: bool = True
    model_mpp: float = Field(0.25, gt=0)
    interpolation: Literal["bilinear", "bicubic", "lanczos"] = "bilinear"


class SplitCfg(_Strict):
    val_fraction: float = Field(0.2, ge=0, lt=1)
    seed: int = 0
    stratify: list[str] = Field(default_factory=lambda: ["scanner"])
    file: str | None = None  # json {"train": [...ids], "val": [...ids]} overriding the random split


class SamplingCfg(_Strict):
    batch_size: int = Field(128, ge=2)
    positive_fraction: float = Field(0.5, gt=0, lt=1)
    # share of the negative slots per negative kind (normalised over the kinds present)
    negative_mix: dict[Literal["crop", "imposter", "mined", "tissue", "hard", "field"], float] = Field(
        default_factory=lambda: {"crop": 0.4, "imposter": 0.1, "mined": 0.1, "tissue": 0.4}
    )


class ElasticCfg(_Strict):
    p: float = Field(0.5, ge=0, le=1)
    alpha: float = Field(3.0, ge=0)  # displacement std of the control points, px
    grid: int = Field(4, ge=2)  # control points per side (smoothness)


class ColorCfg(_Strict):
    scale: float = Field(0.1, ge=0)  # std of the diagonal gain
    mix: float = Field(0.03, ge=0)  # std of the off-diagonal (channel mixing) terms
    bias: float = Field(0.05, ge=0)  # std of the additive term (RGB in [0,1] / OD units)


class StainCfg(_Strict):
    """Stain-vector jitter: re-mix each window's Macenko H/E concentrations with the stain vectors
    of another training image (interpolated by a uniform fraction), then scale the concentrations."""

    p: float = Field(0.0, ge=0, le=1)
    concentration: float = Field(0.1, ge=0)  # std of the per-stain concentration gain


class BlurCfg(_Strict):
    p: float = Field(0.0, ge=0, le=1)
    sigma: float = Field(1.5, gt=0)  # max Gaussian sigma, px (drawn uniformly from [0.3, sigma])


class SharpenCfg(_Strict):
    p: float = Field(0.0, ge=0, le=1)
    amount: float = Field(1.5, gt=0)  # max unsharp-mask gain (drawn uniformly from [0, amount])


class ResampleJitterCfg(_Strict):
    """Down- then up-sampling (as a 20x slide read at 0.25 µm/px is), with a random filter."""

    p: float = Field(0.0, ge=0, le=1)
    factor: float = Field(2.2, gt=1)  # max down-sampling factor (drawn uniformly from [1.2, factor])


class AugmentCfg(_Strict):
    protocol: Literal["ca-rgb", "ca-od", "none"] = "ca-rgb"
    shift: int = Field(8, ge=0)  # max spatial shift of the patch centre, px
    flip: bool = True
    scale: float = Field(0.0, ge=0, lt=0.5)  # max relative zoom (scale jitter), e.g. 0.1 = +-10 %
    elastic: ElasticCfg = Field(default_factory=ElasticCfg)
    rgb: ColorCfg = Field(default_factory=lambda: ColorCfg(scale=0.08, mix=0.02, bias=0.03))
    od: ColorCfg = Field(default_factory=lambda: ColorCfg(scale=0.15, mix=0.04, bias=0.015))
    stain: StainCfg = Field(default_factory=StainCfg)
    blur: BlurCfg = Field(default_factory=BlurCfg)
    sharpen: SharpenCfg = Field(default_factory=SharpenCfg)
    resample: ResampleJitterCfg = Field(default_factory=ResampleJitterCfg)


class DenseCfg(_Strict):
    """Fully convolutional training: whole windows, every output cell supervised."""

    window: int = Field(160, ge=16)  # model input side (px); must give exactly equivariant output
    pos_radius_um: float = Field(2.0, gt=0)  # cells this close to a mitosis are positive ...
    ignore_radius_um: float = Field(7.5, gt=0)  # ... out to here ignored, negative beyond
    positive_windows: float = Field(0.5, ge=0, le=1)  # share of windows anchored on a mitosis
    unlabelled_weight: float = Field(1.0, ge=0)  # negative-cell weight in crops with only the centre labelled
    hard_negative_fraction: float = Field(1.0, gt=0, le=1)  # share of the hardest negative cells in the loss
    imposter_weight: float = Field(1.0, ge=0)  # weight of negative cells within imposter_radius_um of an imposter
    imposter_radius_um: float = Field(3.0, gt=0)


class OptimCfg(_Strict):
    lr: float = Field(0.01, gt=0)
    lr_min: float = Field(1e-5, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(1e-4, ge=0)
    cycle_epochs: int = Field(5, ge=1)  # cosine cycle length (warm restarts)
    cycle_mult: int = Field(1, ge=1)


class TrainCfg(_Strict):
    mode: Literal["patch", "dense"] = "patch"  # the paper's 78 px patches, or dense windows
    epochs: int = Field(20, ge=1)
    steps_per_epoch: int = Field(200, ge=1)
    amp: Literal["none", "bf16"] = "none"  # bf16 autocast (CUDA only)
    compile: bool = False  # torch.compile the model (CUDA)
    time_budget_s: float | None = Field(None, gt=0)  # end after the epoch that crosses it
    log_every: int = Field(10, ge=1)


class ValCfg(_Strict):
    negatives: int = Field(2000, ge=1)  # fixed seeded sample of validation negatives
    batch_size: int = Field(256, ge=1)
    # Detection on the validation images (and tissue) each epoch: sensitivity s, false detections
    # per mm² f, and the F1 they imply at a realistic mitosis density d (per mm²).
    detect: bool = False
    density: float = Field(11.1, gt=0)
    tissue: list[str] = Field(default_factory=list)  # validation tissue tiles (never trained on)
    # what picks best.pt and its threshold (f1_density / f1_mean need detect; f1_mean: the mean of
    # the F1 at density and the official F1 on validation fields, at one threshold)
    select: Literal["loss", "f1_density", "f1_mean", "f1_fields"] = "loss"
    patience: int | None = Field(None, ge=1)  # stop after this many detection validations without a better best.pt
    every: int = Field(1, ge=1)  # detection validation every N epochs (and at the last)


class Config(_Strict):
    name: str = "run"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    out: str = "runs"  # parent folder of run folders
    model: ModelCfg = Field(default_factory=ModelCfg)
    data: DataCfg = Field(default_factory=DataCfg)
    split: SplitCfg = Field(default_factory=SplitCfg)
    sampling: SamplingCfg = Field(default_factory=SamplingCfg)
    augment: AugmentCfg = Field(default_factory=AugmentCfg)
    optim: OptimCfg = Field(default_factory=OptimCfg)
    train: TrainCfg = Field(default_factory=TrainCfg)
    dense: DenseCfg = Field(default_factory=DenseCfg)
    val: ValCfg = Field(default_factory=ValCfg)


def _apply_override(raw: dict, item: str, source: str) -> None:
    if "=" not in item:
        raise MitodetError(source, f"--set {item!r}: expected KEY=VALUE (e.g. optim.lr=0.01)")
    key, value = item.split("=", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise MitodetError(source, f"--set {key}: {part!r} is not a section")
        node = child
    node[parts[-1]] = parsed


def _check_paths(cfg: Config, source: str) -> None:
    d = cfg.data
    paths = [
        ("data.crops", d.crops),
        ("data.annotations", d.annotations),
        ("data.images_dir", d.images_dir),
        ("data.keep_negatives", d.keep_negatives),
        ("split.file", cfg.split.file),
        ("model.init", cfg.model.init),
    ]
    paths += [(f"data.tissue[{i}]", p) for i, p in enumerate(d.tissue)]
    paths += [(f"data.negatives[{i}]", p) for i, p in enumerate(d.negatives)]
    paths += [(f"val.tissue[{i}]", p) for i, p in enumerate(cfg.val.tissue)]
    paths += [("data.atnorm", d.atnorm), ("data.fields", d.fields)]
    paths += [(f"data.hard_negatives[{i}]", p) for i, p in enumerate(d.hard_negatives)]
    for key, p in paths:
        if p is not None and not Path(p).exists():
            hint = _missing_hint(key, p)
            raise MitodetError(
                source, f"{key}: path {p} does not exist (relative paths are read from the cwd {os.getcwd()}){hint}"
            )
    if d.annotations and not d.images_dir:
        raise MitodetError(source, "data.annotations needs data.images_dir (the folder of the MIDOG images)")
    if not (d.crops or d.annotations or d.atnorm or d.fields):
        raise MitodetError(source, "no labelled data: set data.crops, data.atnorm, data.fields or data.annotations")


def validate_settings(model: type[_M], raw: dict, source: str) -> _M:
    """``model.model_validate(raw)``, its first problem as one line naming ``source``."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(x) for x in e["loc"]) or "config"
        more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
        raise MitodetError(source, f"{where}: {e['msg']}{more}") from None


def config_from_dict(raw: dict, source: str = "config", check_paths: bool = True) -> Config:
    """Validate a raw dict into a :class:`Config` (one-line MitodetError on failure)."""
    cfg = validate_settings(Config, raw, source)
    if cfg.model.name not in list_models():
        raise MitodetError(
            source, f"model.name: unknown model {cfg.model.name!r}; choose from {', '.join(list_models())}"
        )
    if cfg.val.select in ("f1_density", "f1_mean", "f1_fields") and not cfg.val.detect:
        raise MitodetError(source, f"val.select: {cfg.val.select} needs val.detect: true")
    if check_paths:
        _check_paths(cfg, source)
    return cfg


def load_config(
    path: str | os.PathLike,
    overrides: list[str] | tuple[str, ...] = (),
    check_paths: bool = True,
    data_root: str | os.PathLike | None = None,
) -> Config:
    """Read a YAML config, apply ``KEY=VALUE`` overrides, validate everything."""
    return config_from_dict(read_settings(path, overrides, data_root), str(path), check_paths)


DATA_PREFIX = "../shared/data/"  # how the bundled configs name the data (beside a checkout)
PROJECT_PREFIXES = ("training-state/", "runs/")  # a checkout's own files, read from its root


def _missing_hint(key: str, path: str) -> str:
    """What to do about a missing path of a config, by what kind of path it is."""
    if path.startswith(DATA_PREFIX):
        return "; set $MITODET_DATA (or --data-root) to the data folder"
    if key.startswith("data.negatives"):
        return (
            "; make it with `mitodet mine residual` (the config's first lines say how), "
            "or train without it: --set data.negatives=[]"
        )
    if path.startswith(PROJECT_PREFIXES):
        return "; a file of the mitodet checkout: run from its root, or --set the setting to your own file"
    return ""


def rebase_data_paths(raw, root: str | os.PathLike | None):
    """``raw`` with every path written ``../shared/data/...`` moved under the data ``root``
    (``--data-root`` or ``$MITODET_DATA``), so the bundled configs work outside a checkout."""
    if root is None:
        return raw
    if isinstance(raw, dict):
        return {k: rebase_data_paths(v, root) for k, v in raw.items()}
    if isinstance(raw, list):
        return [rebase_data_paths(v, root) for v in raw]
    if isinstance(raw, str) and raw.startswith(DATA_PREFIX):
        return str(Path(root) / raw[len(DATA_PREFIX) :])
    return raw


def read_settings(
    path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = (), data_root: str | os.PathLike | None = None
) -> dict:
    """The mapping of a YAML settings file with ``KEY=VALUE`` overrides applied (one-line errors),
    its data paths under ``data_root`` (default ``$MITODET_DATA``; see :func:`rebase_data_paths`)."""
    source = str(path)
    p = Path(path)
    if not p.is_file():
        raise MitodetError(source, "config file not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise MitodetError(source, f"not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise MitodetError(source, "expected a mapping of settings at the top level")
    for item in overrides:
        _apply_override(raw, item, source)
    return rebase_data_paths(raw, data_root or os.environ.get("MITODET_DATA") or None)


def override_config(cfg: Config, overrides, source: str = "config") -> Config:
    """A validated copy of ``cfg`` with ``KEY=VALUE`` overrides applied."""
    if not overrides:
        return cfg
    raw = cfg.model_dump(mode="json")
    for item in overrides:
        _apply_override(raw, item, source)
    return config_from_dict(raw, source)


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML (written into every run folder)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def resolve_paths(cfg: Config) -> Config:
    """The config with every data path made absolute (a run folder works from any cwd)."""
    raw = cfg.model_dump(mode="json")
    d = raw["data"]

    def ab(p):
        return None if p is None else str(Path(p).resolve())

    for k in ("crops", "atnorm", "fields", "annotations", "images_dir", "keep_negatives"):
        d[k] = ab(d[k])
    d["tissue"] = [ab(p) for p in d["tissue"]]
    raw["val"]["tissue"] = [ab(p) for p in raw["val"]["tissue"]]
    d["negatives"] = [ab(p) for p in d["negatives"]]
    d["hard_negatives"] = [ab(p) for p in d["hard_negatives"]]
    raw["split"]["file"] = ab(raw["split"]["file"])
    raw["model"]["init"] = ab(raw["model"]["init"])
    raw["out"] = ab(raw["out"])
    return config_from_dict(raw, "config", check_paths=False)
