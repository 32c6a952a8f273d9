"""CLIP baselines: zero-shot classification with text prompts, and a linear probe on frozen CLIP features.

Both return ``true_logits`` and ``disguised_logits`` ``[B, 6]``. Zero-shot has no notion of which emotion is
true or disguised, so it returns the same logits for both: it measures what CLIP "sees" in the face.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unmask.emotions import EMOTIONS
from unmask.errors import UnmaskError
from unmask.models._registry import BACKBONES, accepted_kwargs, register_model
from unmask.models.adapters import HeadModel
from unmask.models.backbones import Backbone, ClipBackbone, create_backbone

#: Prompt templates averaged per class (CLIP's prompt ensembling); ``{emotion}`` is the canonical name.
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a face showing {emotion}.",
    "a photo of a person feeling {emotion}.",
    "a close-up photo of a face expressing {emotion}.",
    "a face showing {emotion}.",
)


class ClipZeroShot(HeadModel):
    """Cosine similarity between the image embedding and each emotion's averaged prompt embedding, times
    CLIP's learned logit scale. The class embeddings are a buffer computed at construction (saved with the
    state dict, so a checkpoint alone reproduces the logits); :meth:`set_prompts` recomputes them."""

    def __init__(self, backbone: ClipBackbone, model_args: dict[str, Any], *, templates: Sequence[str],
                 classes: Sequence[str]):
        super().__init__(backbone, model_args)
        self.register_buffer("class_embeddings", torch.zeros(len(classes), backbone.num_features))  # [C, E]
        self.set_prompts(templates, classes)

    @torch.no_grad()
    def set_prompts(self, templates: Sequence[str], classes: Sequence[str]) -> None:
        if not templates or any("{emotion}" not in t for t in templates):
            raise UnmaskError("every zero-shot template must contain '{emotion}'", problems=list(templates))
        self.templates, self.classes = tuple(templates), tuple(classes)
        tokenizer = self.backbone.tokenizer()
        device = self.class_embeddings.device
        was_training = self.backbone.training
        self.backbone.eval()
        rows = []
        for name in classes:
            tokens = tokenizer([t.format(emotion=name) for t in templates]).to(device)  # [T, L]
            emb = F.normalize(self.backbone.encode_text(tokens).float(), dim=-1)  # [T, E]
            rows.append(F.normalize(emb.mean(dim=0), dim=-1))  # [E]
        self.backbone.train(was_training)
        self.class_embeddings.copy_(torch.stack(rows))  # [C, E]

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        image = F.normalize(features, dim=-1)  # [B, E]
        logits = self.backbone.logit_scale() * image @ self.class_embeddings.t()  # [B, C]
        return {"true_logits": logits, "disguised_logits": logits}


class ClipLinearProbe(HeadModel):
    """Frozen backbone features ``[B, D]`` -> one Linear per task."""

    def __init__(self, backbone: Backbone, model_args: dict[str, Any], *, num_classes: int = 6):
        super().__init__(backbone, model_args)
        self.true_classifier = nn.Linear(backbone.num_features, num_classes)
        self.disguised_classifier = nn.Linear(backbone.num_features, num_classes)

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"true_logits": self.true_classifier(features),  # [B, num_classes]
                "disguised_logits": self.disguised_classifier(features)}


@register_model
def clip_zero_shot(backbone: str = "clip_vit_b16", weights=None, templates: Sequence[str] | None = None,
                   **backbone_kwargs: Any) -> ClipZeroShot:
    """Zero-shot CLIP over the six emotions; ``templates`` default to :data:`DEFAULT_TEMPLATES`."""
    templates = list(templates) if templates is not None else list(DEFAULT_TEMPLATES)
    if "text_tower" not in accepted_kwargs(BACKBONES.get(backbone)):  # capability: can build a text tower
        clip_names = [n for n in BACKBONES.names() if "text_tower" in accepted_kwargs(BACKBONES.get(n))]
        raise UnmaskError(f"clip_zero_shot needs a CLIP backbone (one with a text tower), got {backbone!r}; "
                          f"choose one of: {', '.join(clip_names)}")
    bb = create_backbone(backbone, weights=weights, mode="frozen", text_tower=True, **backbone_kwargs)
    args = dict(name="clip_zero_shot", backbone=backbone, templates=templates, **backbone_kwargs)
    return ClipZeroShot(bb, args, templates=templates, classes=EMOTIONS)


@register_model
def clip_linear_probe(backbone: str = "clip_vit_b16", weights=None, num_classes: int = 6,
                      **backbone_kwargs: Any) -> ClipLinearProbe:
    """Linear probe on frozen features of ``backbone`` (CLIP by default; any registered backbone works)."""
    bb = create_backbone(backbone, weights=weights, mode="frozen", **backbone_kwargs)
    args = dict(name="clip_linear_probe", backbone=backbone, num_classes=num_classes, **backbone_kwargs)
    return ClipLinearProbe(bb, args, num_classes=num_classes)
