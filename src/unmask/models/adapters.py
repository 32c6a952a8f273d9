"""Adapters of the DSID paper (sec. III-A): Linear -> BatchNorm1d -> ReLU -> Dropout, and the model base class.

``HeadModel`` fixes the contract every unmask model keeps:

* it is built from the data's tasks and predicts some of them (``tasks``): its outputs hold
  ``<task>_logits`` for each, plus whatever features its loss reads (``<task>_features``, ...);
* ``forward(x) == forward_head(backbone features of x)``, so heads train on cached backbone features with the
  same results. A clip model (``clip_input=True``) receives ``[B, T, 3, H, W]`` and its head ``[..., T, D]``
  frame features; the adapter models here average them over time (the DSID clip paradigm), other models
  (IFDD) model time themselves;
* ``model_args`` rebuilds the architecture with ``create_model(**model_args)`` (``weights=None``: the
  checkpoint's state dict is loaded afterwards), tasks included, so a checkpoint alone rebuilds the model;
* ``default_loss`` names the objective (:mod:`unmask.losses`) it trains with unless the config picks one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.models.backbones import Backbone
from unmask.tasks import Task, task_by_name, tasks_from_list, tasks_to_list


def resolve_tasks(tasks: Iterable[Task | dict] | None, *, wanted: tuple[str, ...] = (), single: bool = False, model: str = "") -> tuple[Task, ...]:
    """The data's ``tasks`` (Task objects or their dicts) as Tasks; ``wanted`` names must be among them
    (and single-label with ``single``), else an UnmaskError naming the model and the data's tasks."""
    if tasks is None:
        raise UnmaskError(f"model {model!r} is built from the data's tasks: pass tasks=[...] (unmask.tasks.Task)")
    tasks = tasks_from_list(tasks)
    for name in wanted:
        task = task_by_name(tasks, name)
        if single and task.kind != "single":
            raise UnmaskError(f"model {model!r}: task {name!r} is {task.kind}-label; this model needs a single-label task")
    return tasks


class Adapter(nn.Sequential):
    """Linear -> BatchNorm1d -> ReLU -> Dropout: ``[B, in_dim] -> [B, out_dim]``."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.5):
        super().__init__(
            nn.Linear(in_dim, out_dim),
            nn.BatchNorm1d(out_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.in_dim, self.out_dim = in_dim, out_dim


class HeadModel(nn.Module):
    """Backbone + head. Subclasses implement ``forward_head(features [..., D]) -> dict[str, Tensor]``.

    ``tasks``: the tasks the model predicts (a subset of the data's, in the data's order).
    """

    #: True for a model whose head reads the backbone's token sequences (``forward_features``) rather than
    #: the pooled embedding: the engine then caches and feeds tokens.
    uses_tokens: bool = False
    #: The objective (:mod:`unmask.losses`) the model trains with unless the config picks one: by default a
    #: cross-entropy (BCE for multi-label) term per predicted task. A class attribute, so that tools can read it
    #: from the factory's return type without building the model (:func:`unmask.models.default_loss`).
    default_loss: str = "tasks"
    #: True for a model whose backbone reads a whole clip ``[B, T, 3, H, W]`` at once (motion between its
    #: frames) instead of frame by frame: the engine and prediction then pass clips to it unflattened.
    encodes_clips: bool = False

    def __init__(self, backbone: Backbone, model_args: dict[str, Any], tasks: Iterable[Task], *, clip_input: bool = False):
        super().__init__()
        self.backbone = backbone
        if getattr(backbone, "encodes_clips", False):  # a video backbone (unmask.models.video_backbones)
            self.encodes_clips = True
        self.tasks = tuple(tasks)
        self.clip_input = bool(clip_input)
        # architecture kwargs + the backbone's resolved ones (e.g. quick_gelu); never weights
        self.model_args = {**model_args, **backbone.build_args, "weights": None, "clip_input": self.clip_input,
                           "tasks": tasks_to_list(model_args["tasks"])}

    def pool_frames(self, features: torch.Tensor) -> torch.Tensor:
        """``[..., T, D]`` frame features of a clip model -> ``[..., D]`` (temporal mean); frames pass through."""
        return features.mean(-2) if self.clip_input else features

    @property
    def data_config(self) -> dict[str, Any]:
        return self.backbone.data_config

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # x [B, 3, H, W] or [B, T, 3, H, W]
        encode = self.backbone.forward_features if self.uses_tokens else self.backbone
        if x.dim() == 5 and not self.encodes_clips:
            b, t = x.shape[:2]
            f = encode(x.flatten(0, 1))
            return self.forward_head(f.view(b, t, *f.shape[1:]))  # [B, T, D] (or tokens [B, T, N, C])
        return self.forward_head(encode(x))  # features [B, D] (or tokens [B, N, C])

    def param_counts(self) -> dict[str, int]:
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return {"trainable": trainable, "frozen": frozen}
