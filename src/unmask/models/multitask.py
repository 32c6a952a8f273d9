"""``multitask``: the plain model for any dataset: backbone -> shared adapter -> one classifier per task.

A single-label task gets ``C`` logits (softmax cross-entropy), a multi-label task ``L`` logits (one sigmoid
per label, BCE): the loss registry's ``tasks`` objective picks the term from the task's kind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unmask.models._registry import register_model
from unmask.models.adapters import Adapter, HeadModel, resolve_tasks
from unmask.models.backbones import Backbone, create_backbone
from unmask.tasks import Task


class MultiTask(HeadModel):
    def __init__(self, backbone: Backbone, model_args: dict[str, Any], tasks: Sequence[Task], *,
                 adapter_dim: int = 512, dropout: float = 0.5, clip_input: bool = False):
        super().__init__(backbone, model_args, tasks, clip_input=clip_input)
        self.adapter = Adapter(backbone.num_features, adapter_dim, dropout)
        self.classifiers = nn.ModuleDict({t.name: nn.Linear(adapter_dim, t.num_classes) for t in self.tasks})

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.adapter(self.pool_frames(features))  # [B, adapter_dim]
        out = {f"{name}_logits": head(shared) for name, head in self.classifiers.items()}  # [B, C] each
        out["features"] = shared
        return out


@register_model
def multitask(tasks: Sequence[Task] | None = None, backbone: str = "clip_vit_b16", weights: str | os.PathLike | None = None, mode: str | int = "frozen",
              predict: Sequence[str] | None = None, adapter_dim: int = 512, dropout: float = 0.5,
              clip_input: bool = False, **backbone_kwargs: Any) -> MultiTask:
    """One head per task of the data (``predict``: only these task names)."""
    tasks = resolve_tasks(tasks, wanted=tuple(predict or ()), model="multitask")
    chosen = tuple(t for t in tasks if predict is None or t.name in predict)
    args = dict(name="multitask", tasks=tasks, backbone=backbone, mode=mode, predict=list(predict) if predict else None,
                adapter_dim=adapter_dim, dropout=dropout, **backbone_kwargs)
    bb = create_backbone(backbone, weights=weights, mode=mode, **backbone_kwargs)
    return MultiTask(bb, args, chosen, adapter_dim=adapter_dim, dropout=dropout, clip_input=clip_input)
