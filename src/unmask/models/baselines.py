"""CLIP baselines: zero-shot classification with text prompts, and a linear probe on frozen features.

Zero-shot predicts every single-label task of the data from prompts over that task's label names. It has no
notion of which emotion is felt or shown, so on MFED both tasks get the same logits: it measures what CLIP
"sees" in the face. The linear probe trains one Linear per task (single- or multi-label).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unmask.emotions import MFED_TASKS
from unmask.errors import UnmaskError
from unmask.models._registry import BACKBONES, accepted_kwargs, register_model
from unmask.models.adapters import HeadModel, resolve_tasks
from unmask.models.backbones import Backbone, ClipBackbone, create_backbone
from unmask.tasks import Task

#: Prompt templates averaged per class (CLIP's prompt ensembling); ``{emotion}`` (or ``{label}``) is the
#: label's name.
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a face showing {emotion}.",
    "a photo of a person feeling {emotion}.",
    "a close-up photo of a face expressing {emotion}.",
    "a face showing {emotion}.",
)


class ClipZeroShot(HeadModel):
    """Cosine similarity between the image embedding and each label's averaged prompt embedding, times CLIP's
    learned logit scale, per task. The class embeddings are buffers computed at construction (saved with the
    state dict, so a checkpoint alone reproduces the logits); :meth:`set_prompts` recomputes them."""

    def __init__(self, backbone: ClipBackbone, model_args: dict[str, Any], tasks: Sequence[Task], *,
                 templates: Sequence[str], clip_input: bool = False):
        super().__init__(backbone, model_args, tasks, clip_input=clip_input)
        for task in self.tasks:
            self.register_buffer(f"{task.name}_class_embeddings",
                                 torch.zeros(task.num_classes, backbone.num_features))  # [C, E]
        self.set_prompts(templates)

    @torch.no_grad()
    def set_prompts(self, templates: Sequence[str]) -> None:
        if not templates or any("{emotion}" not in t and "{label}" not in t for t in templates):
            raise UnmaskError("every zero-shot template must contain '{emotion}' or '{label}'", problems=list(templates))
        self.templates = tuple(templates)
        tokenizer = self.backbone.tokenizer()
        was_training = self.backbone.training
        self.backbone.eval()
        for task in self.tasks:
            buffer = getattr(self, f"{task.name}_class_embeddings")
            rows = []
            for name in task.labels:
                tokens = tokenizer([t.format(emotion=name, label=name) for t in templates]).to(buffer.device)  # [T, L]
                emb = F.normalize(self.backbone.encode_text(tokens).float(), dim=-1)  # [T, E]
                rows.append(F.normalize(emb.mean(dim=0), dim=-1))  # [E]
            buffer.copy_(torch.stack(rows))  # [C, E]
        self.backbone.train(was_training)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        image = F.normalize(self.pool_frames(features), dim=-1)  # [B, E]
        scale = self.backbone.logit_scale()
        return {f"{t.name}_logits": scale * image @ getattr(self, f"{t.name}_class_embeddings").t()  # [B, C]
                for t in self.tasks}


class ClipLinearProbe(HeadModel):
    """Frozen backbone features ``[B, D]`` -> one Linear per task."""

    def __init__(self, backbone: Backbone, model_args: dict[str, Any], tasks: Sequence[Task], *,
                 clip_input: bool = False):
        super().__init__(backbone, model_args, tasks, clip_input=clip_input)
        self.classifiers = nn.ModuleDict({t.name: nn.Linear(backbone.num_features, t.num_classes) for t in self.tasks})

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.pool_frames(features)
        return {f"{name}_logits": head(features) for name, head in self.classifiers.items()}  # [B, C]


@register_model
def clip_zero_shot(tasks: Sequence[Task] | None = MFED_TASKS, backbone: str = "clip_vit_b16", weights: str | os.PathLike | None = None,
                   templates: Sequence[str] | None = None, clip_input: bool = False,
                   **backbone_kwargs: Any) -> ClipZeroShot:
    """Zero-shot CLIP over each single-label task's labels; ``templates`` default to :data:`DEFAULT_TEMPLATES`."""
    tasks = resolve_tasks(tasks, model="clip_zero_shot")
    single = tuple(t for t in tasks if t.kind == "single")
    if not single:
        raise UnmaskError("clip_zero_shot predicts single-label tasks; this data has none")
    templates = list(templates) if templates is not None else list(DEFAULT_TEMPLATES)
    if "text_tower" not in accepted_kwargs(BACKBONES.get(backbone)):  # capability: can build a text tower
        clip_names = [n for n in BACKBONES.names() if "text_tower" in accepted_kwargs(BACKBONES.get(n))]
        raise UnmaskError(f"clip_zero_shot needs a CLIP backbone (one with a text tower), got {backbone!r}; "
                          f"choose one of: {', '.join(clip_names)}")
    bb = create_backbone(backbone, weights=weights, mode="frozen", text_tower=True, **backbone_kwargs)
    args = dict(name="clip_zero_shot", tasks=tasks, backbone=backbone, templates=templates, **backbone_kwargs)
    return ClipZeroShot(bb, args, single, templates=templates, clip_input=clip_input)


@register_model
def clip_linear_probe(tasks: Sequence[Task] | None = MFED_TASKS, backbone: str = "clip_vit_b16", weights: str | os.PathLike | None = None, clip_input: bool = False,
                      **backbone_kwargs: Any) -> ClipLinearProbe:
    """Linear probe (one Linear per task of the data) on frozen features of ``backbone`` (CLIP by default; any
    registered backbone works)."""
    tasks = resolve_tasks(tasks, model="clip_linear_probe")
    bb = create_backbone(backbone, weights=weights, mode="frozen", **backbone_kwargs)
    args = dict(name="clip_linear_probe", tasks=tasks, backbone=backbone, **backbone_kwargs)
    return ClipLinearProbe(bb, args, tasks, clip_input=clip_input)
