"""The P4 rotation-invariant ResNet (issue #3): layers, networks, registry, export, checkpoints."""

from mitodet.model.checkpoint import load_checkpoint, save_checkpoint
from mitodet.model.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model", "save_checkpoint", "load_checkpoint"]
