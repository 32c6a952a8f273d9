"""unmask.models: backbones (timm, open_clip), DSID and baselines, created by name.

>>> model = create_model("dsid", backbone="tiny_vit")
>>> out = model(torch.randn(2, 3, 64, 64))   # {"true_logits": [2, 6], "disguised_logits": [2, 6], ...}
"""

from __future__ import annotations

from typing import Any

from torch import nn

from unmask.models._registry import MODELS, register_backbone, register_model
from unmask.models.adapters import Adapter, HeadModel
from unmask.models.baselines import DEFAULT_TEMPLATES, ClipLinearProbe, ClipZeroShot  # registers its models
from unmask.models.dsid import DSID, SingleStream  # registers its models
from unmask.models.backbones import Backbone, ClipBackbone, TimmBackbone, create_backbone, list_backbones
from unmask.models import facex, fer, offtheshelf  # noqa: F401  register their backbones and models
from unmask.models.weights import parse_weights, read_checkpoint

__all__ = [
    "DEFAULT_TEMPLATES", "DSID", "Adapter", "Backbone", "ClipBackbone", "ClipLinearProbe", "ClipZeroShot",
    "HeadModel", "SingleStream", "TimmBackbone", "create_backbone", "create_model", "list_backbones",
    "list_models", "parse_weights", "read_checkpoint", "register_backbone", "register_model",
]


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Create a registered model; unknown names or arguments raise UnmaskError listing the known ones."""
    return MODELS.call(name, **overrides)


def list_models() -> list[str]:
    return MODELS.names()
