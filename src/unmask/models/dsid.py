"""DSID (Dual Stream Independence Decoupling) and its single-stream counterpart.

DSID: backbone features ``[B, D]`` -> masked-expression adapter ``[B, adapter_dim]`` -> two parallel adapters
(true, disguised) ``[B, branch_dim]`` each -> one Linear classifier each ``[B, num_classes]``.
The branch features returned (``true_features``, ``disguised_features``) are the adapter outputs the classifiers
read (after dropout in training mode); the objective's HSIC term compares them. "DSID without HSIC" is this
model trained with ``alpha=0``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.models._registry import register_model
from unmask.models.adapters import Adapter, HeadModel
from unmask.models.backbones import Backbone, create_backbone

TASKS = ("true", "disguised")


class DSID(HeadModel):
    def __init__(self, backbone: Backbone, model_args: dict[str, Any], *, adapter_dim: int = 512,
                 branch_dim: int = 256, dropout: float = 0.5, num_classes: int = 6):
        super().__init__(backbone, model_args)
        self.masked_adapter = Adapter(backbone.num_features, adapter_dim, dropout)
        self.true_adapter = Adapter(adapter_dim, branch_dim, dropout)
        self.disguised_adapter = Adapter(adapter_dim, branch_dim, dropout)
        self.true_classifier = nn.Linear(branch_dim, num_classes)
        self.disguised_classifier = nn.Linear(branch_dim, num_classes)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.masked_adapter(features)  # [B, adapter_dim]
        true_features = self.true_adapter(shared)  # [B, branch_dim]
        disguised_features = self.disguised_adapter(shared)  # [B, branch_dim]
        return {
            "true_logits": self.true_classifier(true_features),  # [B, num_classes]
            "disguised_logits": self.disguised_classifier(disguised_features),  # [B, num_classes]
            "true_features": true_features,
            "disguised_features": disguised_features,
        }


class SingleStream(HeadModel):
    """Backbone -> adapter -> one classifier for one task (the ViT / ResNet18 / CLIP rows of the paper)."""

    def __init__(self, backbone: Backbone, model_args: dict[str, Any], *, task: str = "true",
                 adapter_dim: int = 512, dropout: float = 0.5, num_classes: int = 6):
        super().__init__(backbone, model_args)
        if task not in TASKS:
            raise UnmaskError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}")
        self.task = task
        self.adapter = Adapter(backbone.num_features, adapter_dim, dropout)
        self.classifier = nn.Linear(adapter_dim, num_classes)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        task_features = self.adapter(features)  # [B, adapter_dim]
        return {f"{self.task}_logits": self.classifier(task_features),  # [B, num_classes]
                f"{self.task}_features": task_features}


@register_model
def dsid(backbone: str = "clip_vit_b16", weights=None, mode: str | int = "frozen", adapter_dim: int = 512,
         branch_dim: int = 256, dropout: float = 0.5, num_classes: int = 6, **backbone_kwargs: Any) -> DSID:
    """DSID; extra keyword arguments (e.g. ``img_size``) go to the backbone."""
    args = dict(name="dsid", backbone=backbone, mode=mode, adapter_dim=adapter_dim, branch_dim=branch_dim,
                dropout=dropout, num_classes=num_classes, **backbone_kwargs)
    bb = create_backbone(backbone, weights=weights, mode=mode, **backbone_kwargs)
    return DSID(bb, args, adapter_dim=adapter_dim, branch_dim=branch_dim, dropout=dropout, num_classes=num_classes)


@register_model
def single_stream(backbone: str = "clip_vit_b16", weights=None, mode: str | int = "frozen", task: str = "true",
                  adapter_dim: int = 512, dropout: float = 0.5, num_classes: int = 6,
                  **backbone_kwargs: Any) -> SingleStream:
    """One task (``task="true"|"disguised"``): backbone -> adapter -> classifier."""
    if task not in TASKS:
        raise UnmaskError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}")
    args = dict(name="single_stream", backbone=backbone, mode=mode, task=task, adapter_dim=adapter_dim,
                dropout=dropout, num_classes=num_classes, **backbone_kwargs)
    bb = create_backbone(backbone, weights=weights, mode=mode, **backbone_kwargs)
    return SingleStream(bb, args, task=task, adapter_dim=adapter_dim, dropout=dropout, num_classes=num_classes)
