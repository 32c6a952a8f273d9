"""The model and backbone registries (the machinery is :mod:`unmask.registry`, shared with losses)."""

from __future__ import annotations

from unmask.registry import Registry, accepted_kwargs, check_kwargs, takes_var_kwargs

MODELS = Registry("model")
BACKBONES = Registry("backbone")
register_model = MODELS.register
register_backbone = BACKBONES.register

__all__ = ["BACKBONES", "MODELS", "Registry", "accepted_kwargs", "check_kwargs", "register_backbone",
           "register_model", "takes_var_kwargs"]
