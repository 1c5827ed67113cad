"""Named model configurations (a small registry, as timm does).

``create_model(name, **overrides)`` builds a network; ``model.config`` holds the name
and the overrides, so ``create_model(**model.config)`` rebuilds it (checkpoints do).
"""

from __future__ import annotations

from dataclasses import dataclass

from mitodet.errors import MitodetError
from mitodet.model.classifier import P4Classifier
from mitodet.model.resnet import P4ResNet, PlainResNet, ResNet


@dataclass(frozen=True)
class ModelSpec:
    cls: type
    defaults: dict
    description: str
    receptive_field: int | None = None  # asserted when the defaults are used


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, cls: type, description: str, receptive_field: int | None = None, **defaults):
    """Register a configuration under ``name`` (later registrations replace earlier ones)."""
    _REGISTRY[name] = ModelSpec(cls, defaults, description, receptive_field)


def list_models() -> list[str]:
    """Registered configuration names."""
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise MitodetError(None, f"unknown model {name!r}; choose from {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, **overrides) -> ResNet:
    """Build the registered configuration ``name`` with keyword ``overrides`` (e.g. ``width=``)."""
    spec = model_spec(name)
    try:
        model = spec.cls(**{**spec.defaults, **overrides})
    except (TypeError, ValueError) as err:
        raise MitodetError(None, f"model {name!r}: bad setting: {err}") from None
    if spec.receptive_field is not None and not overrides:
        assert model.receptive_field == spec.receptive_field, (name, model.receptive_field)
    model.config = {"name": name, **overrides}
    return model


# The paper: ~70 conv layers (bottleneck blocks: 1x1-3x3-1x1), one 2x2 max-pool, 78x78 rf.
# rf = 2 + 2*(3x3 convs before the pool) + 4*(3x3 convs after) = 2 + 2*12 + 4*13 = 78.
_PAPER = dict(block="bottleneck", width=16, width_post=32, bottleneck=0.5, stem_convs=2, blocks_pre=10, blocks_post=13)
# CPU-sized: two 3x3 convs before the pool, 9 basic blocks (18 3x3 convs) after it:
# rf = 2 + 2*2 + 4*18 = 78 (same field of view as the paper), ~1/6 of its FLOPs per pixel.
_FAST = dict(block="basic", width=8, width_post=8, stem_convs=2, blocks_pre=0, blocks_post=9)
# Between the two, for the capacity comparison of #17: 12 fields throughout (~2.2x the
# parameters and ~1.9x the CPU time of 'fast'); no skip projection, so 'fast' widens into it.
_MEDIUM = dict(block="basic", width=12, width_post=12, stem_convs=2, blocks_pre=0, blocks_post=9)
# For tests: trains in seconds on a CPU; rf = 2 + 2*3 + 4*2 = 16.
_TINY = dict(block="basic", width=2, width_post=4, stem_convs=1, blocks_pre=1, blocks_post=1)

register_model("paper", P4ResNet, "P4 ResNet of the paper (73 conv layers, rf 78)", 78, **_PAPER)
register_model("fast", P4ResNet, "P4 ResNet for CPU inference (rf 78)", 78, **_FAST)
register_model("medium", P4ResNet, "P4 ResNet, 'fast' with 12 fields (rf 78)", 78, **_MEDIUM)
register_model("tiny", P4ResNet, "tiny P4 ResNet for tests (rf 16)", 16, **_TINY)
register_model("plain-paper", PlainResNet, "non-equivariant 'paper' (same FLOPs)", 78, **_PAPER)
register_model("plain-fast", PlainResNet, "non-equivariant 'fast' (same FLOPs)", 78, **_FAST)
register_model("plain-tiny", PlainResNet, "non-equivariant 'tiny' (same FLOPs)", 16, **_TINY)
# Crop classifiers (atypical vs normal): the same layouts read out by global average pooling, so
# a detector's weights initialise them ("atypical-fast" from the bundled "fast" detectors).
_WIDE = dict(block="basic", width=8, width_post=16, stem_convs=2, blocks_pre=0, blocks_post=9)
register_model("atypical-fast", P4Classifier, "crop classifier, 'fast' layout (rf 78)", 78, **_FAST)
register_model("atypical-wide", P4Classifier, "crop classifier, 'fast' with 16 fields after the pool", 78, **_WIDE)
register_model("atypical-tiny", P4Classifier, "tiny crop classifier for tests (rf 16)", 16, **_TINY)
