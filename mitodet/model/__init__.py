"""The P4 rotation-invariant ResNet: layers, networks, registry, export, checkpoints, checks."""

from mitodet.model.checkpoint import load_checkpoint, model_from, save_checkpoint
from mitodet.model.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "load_checkpoint", "model_from", "register_model", "save_checkpoint"]
