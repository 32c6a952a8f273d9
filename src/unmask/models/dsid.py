"""DSID (Dual Stream Independence Decoupling) and its single-stream counterpart.

DSID: backbone features ``[B, D]`` -> masked-expression adapter ``[B, adapter_dim]`` -> two parallel adapters
(true, disguised) ``[B, branch_dim]`` each -> one Linear classifier each ``[B, num_classes]``.
The branch features returned (``true_features``, ``disguised_features``) are the adapter outputs the classifiers
read (after dropout in training mode); the objective's HSIC term compares them. "DSID without HSIC" is this
model trained with ``alpha=0``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unmask.emotions import MFED_TASKS
from unmask.models._registry import register_model
from unmask.models.adapters import Adapter, HeadModel, resolve_tasks
from unmask.models.backbones import Backbone, create_backbone
from unmask.tasks import Task, task_by_name


class DSID(HeadModel):
    """Two streams over one shared adapter: the ``true`` stream predicts ``true_task`` (the felt emotion), the
    ``disguised`` stream ``disguised_task`` (the shown one); both single-label."""

    def __init__(self, backbone: Backbone, model_args: dict[str, Any], *, true_task: Task, disguised_task: Task,
                 adapter_dim: int = 512, branch_dim: int = 256, dropout: float = 0.5, clip_input: bool = False):
        super().__init__(backbone, model_args, (true_task, disguised_task), clip_input=clip_input)
        self.true_task, self.disguised_task = true_task.name, disguised_task.name
        self.masked_adapter = Adapter(backbone.num_features, adapter_dim, dropout)
        self.true_adapter = Adapter(adapter_dim, branch_dim, dropout)
        self.disguised_adapter = Adapter(adapter_dim, branch_dim, dropout)
        self.true_classifier = nn.Linear(branch_dim, true_task.num_classes)
        self.disguised_classifier = nn.Linear(branch_dim, disguised_task.num_classes)

    default_loss = "dsid"

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.masked_adapter(self.pool_frames(features))  # [B, adapter_dim]
        true_features = self.true_adapter(shared)  # [B, branch_dim]
        disguised_features = self.disguised_adapter(shared)  # [B, branch_dim]
        return {
            f"{self.true_task}_logits": self.true_classifier(true_features),  # [B, C]
            f"{self.disguised_task}_logits": self.disguised_classifier(disguised_features),  # [B, C]
            f"{self.true_task}_features": true_features,
            f"{self.disguised_task}_features": disguised_features,
        }


class SingleStream(HeadModel):
    """Backbone -> adapter -> one classifier for one task (the ViT / ResNet18 / CLIP rows of the paper)."""

    def __init__(self, backbone: Backbone, model_args: dict[str, Any], *, task: Task, adapter_dim: int = 512,
                 dropout: float = 0.5, clip_input: bool = False):
        super().__init__(backbone, model_args, (task,), clip_input=clip_input)
        self.task = task.name
        self.adapter = Adapter(backbone.num_features, adapter_dim, dropout)
        self.classifier = nn.Linear(adapter_dim, task.num_classes)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        task_features = self.adapter(self.pool_frames(features))  # [B, adapter_dim]
        return {f"{self.task}_logits": self.classifier(task_features),  # [B, C]
                f"{self.task}_features": task_features}


@register_model
def dsid(tasks: Sequence[Task] | None = MFED_TASKS, backbone: str = "clip_vit_b16", weights: str | os.PathLike | None = None, mode: str | int = "frozen",
         true_task: str = "true", disguised_task: str = "disguised", adapter_dim: int = 512, branch_dim: int = 256,
         dropout: float = 0.5, clip_input: bool = False, **backbone_kwargs: Any) -> DSID:
    """DSID over two single-label tasks of the data (MFED's by default); extra keyword arguments (e.g.
    ``img_size``) go to the backbone."""
    tasks = resolve_tasks(tasks, wanted=(true_task, disguised_task), single=True, model="dsid")
    args = dict(name="dsid", tasks=tasks, backbone=backbone, mode=mode, true_task=true_task,
                disguised_task=disguised_task, adapter_dim=adapter_dim, branch_dim=branch_dim, dropout=dropout,
                **backbone_kwargs)
    bb = create_backbone(backbone, weights=weights, mode=mode, **backbone_kwargs)
    return DSID(bb, args, true_task=task_by_name(tasks, true_task), disguised_task=task_by_name(tasks, disguised_task),
                adapter_dim=adapter_dim, branch_dim=branch_dim, dropout=dropout, clip_input=clip_input)


@register_model
def single_stream(tasks: Sequence[Task] | None = MFED_TASKS, backbone: str = "clip_vit_b16", weights: str | os.PathLike | None = None, mode: str | int = "frozen",
                  task: str = "true", adapter_dim: int = 512, dropout: float = 0.5, clip_input: bool = False,
                  **backbone_kwargs: Any) -> SingleStream:
    """One task of the data (``task``, e.g. MFED's ``true`` or ``disguised``): backbone -> adapter -> classifier."""
    tasks = resolve_tasks(tasks, wanted=(task,), model="single_stream")
    args = dict(name="single_stream", tasks=tasks, backbone=backbone, mode=mode, task=task, adapter_dim=adapter_dim,
                dropout=dropout, **backbone_kwargs)
    bb = create_backbone(backbone, weights=weights, mode=mode, **backbone_kwargs)
    return SingleStream(bb, args, task=task_by_name(tasks, task), adapter_dim=adapter_dim, dropout=dropout,
                        clip_input=clip_input)
