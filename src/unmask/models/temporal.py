"""Clip baselines over per-frame embeddings of a (frozen) image backbone: the rails IFDD is compared on.

* ``frame_average``: the frame embeddings ``[B, T, D]`` averaged over time, then one Linear per task (a linear
  probe over time: with CLIP, the "CLIP linear probe over time" baseline). It sees *what* the frames show on
  average, not how they change.
* ``temporal_transformer``: ``Linear(D -> dim)`` + learned position embeddings + a small pre-norm
  ``nn.TransformerEncoder`` over the T frames, mean over time, Linear per task: a model that can use order and
  change.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.models._registry import register_model
from unmask.models.adapters import HeadModel, resolve_tasks
from unmask.models.backbones import Backbone, create_backbone
from unmask.tasks import Task


def _clip_features(features: torch.Tensor, name: str) -> None:
    if features.dim() < 3:
        raise UnmaskError(f"model {name!r} reads clips of frame features [B, T, D] (data.paradigm=clip); got "
                          f"{tuple(features.shape)}")


class FrameAverage(HeadModel):
    def __init__(self, backbone: Backbone, model_args: dict[str, Any], tasks: Sequence[Task], *, dropout: float,
                 clip_input: bool = True):
        super().__init__(backbone, model_args, tasks, clip_input=clip_input)
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict({t.name: nn.Linear(backbone.num_features, t.num_classes) for t in self.tasks})

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:  # [..., T, D]
        _clip_features(features, "frame_average")
        f = features.mean(-2)  # [..., D]
        out = {f"{name}_logits": head(self.dropout(f)) for name, head in self.classifiers.items()}
        out["features"] = f
        return out


class TemporalTransformer(HeadModel):
    def __init__(self, backbone: Backbone, model_args: dict[str, Any], tasks: Sequence[Task], *, frames: int,
                 dim: int, depth: int, heads: int, dropout: float, clip_input: bool = True):
        super().__init__(backbone, model_args, tasks, clip_input=clip_input)
        self.frames = frames
        self.embed = nn.Linear(backbone.num_features, dim)
        self.position = nn.Parameter(torch.zeros(1, frames, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.1, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict({t.name: nn.Linear(dim, t.num_classes) for t in self.tasks})

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:  # [B, T, D]
        _clip_features(features, "temporal_transformer")
        if features.shape[-2] != self.frames:
            raise UnmaskError(f"temporal_transformer was built for {self.frames} frames, got {features.shape[-2]}")
        h = self.encoder(self.embed(features) + self.position)
        f = self.norm(h.mean(1))  # [B, dim]
        out = {f"{name}_logits": head(self.dropout(f)) for name, head in self.classifiers.items()}
        out["features"] = f
        return out


def _single(tasks, name):
    chosen = tuple(t for t in tasks if t.kind == "single")
    if not chosen:
        raise UnmaskError(f"model {name!r} classifies: the data needs a single-label task")
    return chosen


@register_model
def frame_average(tasks: Sequence[Task] | None = None, backbone: str = "clip_vit_b16", weights: str | os.PathLike | None = None, mode: str | int = "frozen",
                  dropout: float = 0.0, clip_input: bool = True, **backbone_kwargs: Any) -> FrameAverage:
    """Frame embeddings averaged over time + one Linear per single-label task of the data."""
    tasks = resolve_tasks(tasks, model="frame_average")
    args = dict(name="frame_average", tasks=tasks, backbone=backbone, mode=mode, dropout=dropout, **backbone_kwargs)
    bb = create_backbone(backbone, weights=weights, mode=mode, **backbone_kwargs)
    return FrameAverage(bb, args, _single(tasks, "frame_average"), dropout=dropout, clip_input=clip_input)


@register_model
def temporal_transformer(tasks: Sequence[Task] | None = None, backbone: str = "clip_vit_b16", weights: str | os.PathLike | None = None, mode: str | int = "frozen",
                         frames: int = 16, dim: int = 256, depth: int = 2, heads: int = 4, dropout: float = 0.5,
                         clip_input: bool = True, **backbone_kwargs: Any) -> TemporalTransformer:
    """A small transformer over the ``frames`` frame embeddings, then one Linear per single-label task."""
    tasks = resolve_tasks(tasks, model="temporal_transformer")
    args = dict(name="temporal_transformer", tasks=tasks, backbone=backbone, mode=mode, frames=frames, dim=dim,
                depth=depth, heads=heads, dropout=dropout, **backbone_kwargs)
    bb = create_backbone(backbone, weights=weights, mode=mode, **backbone_kwargs)
    return TemporalTransformer(bb, args, _single(tasks, "temporal_transformer"), frames=frames, dim=dim, depth=depth,
                               heads=heads, dropout=dropout, clip_input=clip_input)
