"""MEDN: Motion-Emotion feature Decoupling Network for micro-expression recognition (our reconstruction).

Only the paper's abstract is public (docs/medn.md says what it fixes and what we chose). The model reads the
``clip_flow`` paradigm: T face crops from onset to apex (``prepare --frames rise:T``) and, as one more frame,
the cached onset-to-apex optical flow (``prepare --flow``), ``[B, T + 1, 3, H, W]``.

* **motion branch** (explicit motion): a shallow CNN over the flow (u, v, optical strain; STSTNet-like, a
  BatchNorm first so the uint8 encoding's scale does not matter) -> ``m`` ``[B, dm]``, with an **AU head**
  (multi-label, over the data's AU task) that keeps ``m`` in the explicit-motion domain;
* **emotion branch**, SEViT (implicit emotion): the backbone's patch tokens of every frame (``frame_input``:
  the RGB frames, ``rgb``, or each frame's change from the onset frame times ``delta_gain``, ``delta``, which
  hands a randomly initialised frame encoder the temporal variation directly); each token scored
  by its temporal variation (``score``: L2 change from the previous frame, ``prev``, or from the onset frame,
  ``onset``); for each sparsity rate rho in ``rates`` the top ``ceil(rho * N)`` tokens of every frame are kept
  (optionally plus one token averaging the dropped ones, ``fuse_dropped``), given a learned frame embedding,
  and read by a transformer (``share_rates``: one for all rates, else one per rate), mean-pooled; the rates are
  averaged (``combine="mean"``) or concatenated and projected (``"concat"``) -> ``e`` ``[B, de]``.
  ``rates=[1.0]`` is the dense ablation (no sparsity);
* **CoFM** (``fusion``): ``gated`` (default) ``g = sigmoid(W [m; e])``, ``f = g * m' + (1 - g) * e'``;
  ``cross_attention`` (m' and e' as token sets attending to each other); ``sum``; ``concat``;
* a classifier per single-label task over ``f``.

``branches="motion"`` is the motion-branch-alone baseline (no SEViT), ``"emotion"`` SEViT alone. The whole
network sits in the model's ``backbone`` (:class:`MEDNEncoder`, which reads whole clips: ``encodes_clips``),
so it trains on the image path; the backbone named in the config is SEViT's frame encoder inside it.
Outputs: ``<task>_logits``, ``motion_features`` ``[B, dm]``, ``emotion_features`` ``[B, de]``, ``features``
(fused), ``gate`` (mean CoFM gate per sample, where gated). The loss is ``medn`` (:mod:`unmask.losses.medn`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.models._registry import register_model
from unmask.models.adapters import HeadModel, resolve_tasks
from unmask.models.backbones import create_backbone
from unmask.tasks import Task

BRANCHES = ("both", "motion", "emotion")
FUSIONS = ("gated", "cross_attention", "sum", "concat")
SCORES = ("prev", "onset")
FRAME_INPUTS = ("rgb", "delta")


class MotionCNN(nn.Module):
    """Shallow CNN over the flow: ``[B, 3, H, W]`` -> ``[B, dim]``."""

    def __init__(self, dim: int = 64, width: int = 16):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.net = nn.Sequential(nn.BatchNorm2d(3), block(3, width), nn.MaxPool2d(2), block(width, 2 * width),
                                 nn.MaxPool2d(2), block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(4 * width, dim), nn.ReLU(inplace=True))

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        return self.net(flow)


def select_tokens(tokens: torch.Tensor, scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``k`` highest-scoring tokens of every frame, in their original order.

    ``tokens [B, T, N, C]``, ``scores [B, T, N]`` -> (kept ``[B, T, k, C]``, their indices ``[B, T, k]``)."""
    idx = scores.topk(k, dim=-1).indices.sort(dim=-1).values
    kept = tokens.gather(2, idx[..., None].expand(*idx.shape, tokens.shape[-1]))
    return kept, idx


class SEViT(nn.Module):
    """Sparse Emotion ViT over frame tokens: ``[B, T, N, C]`` -> ``[B, dim]`` (see the module docstring)."""

    def __init__(self, token_dim: int, dim: int = 64, rates: Sequence[float] = (0.25, 0.5, 0.75),
                 score: str = "prev", depth: int = 1, heads: int = 2, max_frames: int = 32,
                 share_rates: bool = True, combine: str = "mean", fuse_dropped: bool = False):
        super().__init__()
        if not rates or any(not 0 < r <= 1 for r in rates):
            raise UnmaskError(f"medn: sparsity rates must be within (0, 1], got {list(rates)}")
        if score not in SCORES:
            raise UnmaskError(f"medn: unknown token score {score!r}; expected one of {', '.join(SCORES)}")
        if combine not in ("mean", "concat"):
            raise UnmaskError(f"medn: combine must be mean or concat, got {combine!r}")
        self.rates, self.score, self.combine, self.fuse_dropped = tuple(float(r) for r in rates), score, combine, fuse_dropped
        self.proj = nn.Linear(token_dim, dim)
        self.frame_embed = nn.Parameter(torch.zeros(max_frames, dim))
        nn.init.trunc_normal_(self.frame_embed, std=0.02)

        def encoder():
            layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.1, batch_first=True, norm_first=True)
            return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

        n = 1 if share_rates else len(self.rates)
        self.encoders = nn.ModuleList(encoder() for _ in range(n))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim * len(self.rates), dim) if combine == "concat" else nn.Identity()

    def token_scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """Temporal variation of every token ``[B, T, N, C]`` -> ``[B, T, N]`` (frame 0 scores against frame 1)."""
        ref = tokens[:, :1] if self.score == "onset" else torch.cat([tokens[:, 1:2], tokens[:, :-1]], 1)
        if tokens.shape[1] == 1:
            ref = torch.zeros_like(tokens)
        return (tokens - ref).detach().norm(dim=-1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t, n, _ = tokens.shape
        if t > self.frame_embed.shape[0]:
            raise UnmaskError(f"medn: {t} frames, more than max_frames={self.frame_embed.shape[0]}")
        scores = self.token_scores(tokens)
        x = self.proj(tokens) + self.frame_embed[:t, None, :]  # [B, T, N, D]
        pooled = []
        for i, rho in enumerate(self.rates):
            k = max(1, math.ceil(rho * n))
            kept, idx = select_tokens(x, scores, k)  # [B, T, k, D]
            if self.fuse_dropped and k < n:  # EViT-style: the dropped tokens of each frame as one mean token
                dropped = torch.ones(b, t, n, device=x.device).scatter(2, idx, 0.0)[..., None]
                extra = (x * dropped).sum(2, keepdim=True) / dropped.sum(2, keepdim=True).clamp_min(1)
                kept = torch.cat([kept, extra], 2)
            enc = self.encoders[0 if len(self.encoders) == 1 else i]
            pooled.append(self.norm(enc(kept.flatten(1, 2))).mean(1))  # [B, D]
        return self.out(torch.cat(pooled, -1)) if self.combine == "concat" else torch.stack(pooled).mean(0)


class MEDNEncoder(nn.Module):
    """The clip encoder of MEDN: ``[B, T + 1, 3, H, W]`` (frames then flow) -> ``[B, dm + de]`` (``m`` then ``e``;
    zeros for a branch switched off). Presents the frame backbone's preprocessing."""

    def __init__(self, frames_backbone: nn.Module, motion: MotionCNN | None, sevit: SEViT | None, dm: int, de: int,
                 frame_input: str = "rgb", delta_gain: float = 4.0):
        super().__init__()
        if frame_input not in FRAME_INPUTS:
            raise UnmaskError(f"medn: frame_input must be one of {', '.join(FRAME_INPUTS)}, got {frame_input!r}")
        self.frames_backbone, self.motion, self.sevit, self.dm, self.de = frames_backbone, motion, sevit, dm, de
        self.frame_input, self.delta_gain = frame_input, float(delta_gain)
        self.prefix = int(getattr(frames_backbone.model, "num_prefix_tokens", 0))
        self.num_features = dm + de
        self.data_config = frames_backbone.data_config
        self.build_args = frames_backbone.build_args

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] < 2:
            raise UnmaskError(f"medn reads clips of frames plus their flow [B, T + 1, 3, H, W] (data.paradigm "
                              f"clip_flow), got {tuple(x.shape)}")
        frames, flow = x[:, :-1], x[:, -1]
        b, t = frames.shape[:2]
        m = self.motion(flow) if self.motion is not None else x.new_zeros(b, self.dm)
        if self.sevit is not None:
            if self.frame_input == "delta":  # each frame's change from the onset frame, amplified
                frames = self.delta_gain * (frames - frames[:, :1])
            tok = self.frames_backbone.forward_features(frames.flatten(0, 1))[:, self.prefix:]  # [B*T, N, C]
            e = self.sevit(tok.view(b, t, *tok.shape[1:]))
        else:
            e = x.new_zeros(b, self.de)
        return torch.cat([m, e], -1)

    forward_features = forward


class CoFM(nn.Module):
    """Collaborative fusion of ``m [B, dm]`` and ``e [B, de]`` -> ``(f [B, d], gate [B] or None)``."""

    def __init__(self, dm: int, de: int, dim: int, kind: str = "gated", heads: int = 2, tokens: int = 4):
        super().__init__()
        if kind not in FUSIONS:
            raise UnmaskError(f"medn: unknown fusion {kind!r}; expected one of {', '.join(FUSIONS)}")
        self.kind, self.dim, self.tokens = kind, dim, tokens
        if kind == "concat":
            self.mix = nn.Sequential(nn.Linear(dm + de, dim), nn.ReLU(inplace=True))
            return
        n = tokens if kind == "cross_attention" else 1
        self.pm, self.pe = nn.Linear(dm, dim * n), nn.Linear(de, dim * n)
        if kind == "gated":
            self.gate = nn.Linear(dm + de, dim)
        if kind == "cross_attention":
            self.m_from_e = nn.MultiheadAttention(dim, heads, batch_first=True)
            self.e_from_m = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, m: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.kind == "concat":
            return self.mix(torch.cat([m, e], -1)), None
        pm, pe = self.pm(m), self.pe(e)
        if self.kind == "sum":
            return pm + pe, None
        if self.kind == "gated":
            g = torch.sigmoid(self.gate(torch.cat([m, e], -1)))  # [B, d]
            return g * pm + (1 - g) * pe, g.mean(-1)
        tm, te = pm.view(-1, self.tokens, self.dim), pe.view(-1, self.tokens, self.dim)  # token sets
        tm2 = tm + self.m_from_e(tm, te, te, need_weights=False)[0]
        te2 = te + self.e_from_m(te, tm, tm, need_weights=False)[0]
        return torch.cat([tm2, te2], 1).mean(1), None


class MEDN(HeadModel):
    default_loss = "medn"
    encodes_clips = True

    def __init__(self, encoder: MEDNEncoder, model_args: dict[str, Any], tasks: Iterable[Task], *, classes: Task, au: Task | None = None,
                 branches: str = "both", fusion: str = "gated", fusion_dim: int = 64, dropout: float = 0.3,
                 clip_input: bool = True):
        super().__init__(encoder, model_args, tasks, clip_input=clip_input)
        dm, de = encoder.dm, encoder.de
        self.branches = branches
        self.au_task = au
        self.au_head = nn.Linear(dm, au.num_classes) if au is not None else None
        if branches == "both":
            self.fusion = CoFM(dm, de, fusion_dim, fusion)
            width = fusion_dim
        else:
            self.fusion, width = None, dm if branches == "motion" else de
        self.drop = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict({t.name: nn.Linear(width, t.num_classes) for t in classes})

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:  # [B, dm + de]
        enc = self.backbone
        m, e = features[..., :enc.dm], features[..., enc.dm:]
        out = {"motion_features": m, "emotion_features": e}
        if self.fusion is not None:
            f, gate = self.fusion(m, e)
            if gate is not None:
                out["gate"] = gate
        else:
            f = m if self.branches == "motion" else e
        out["features"] = f
        f = self.drop(f)
        for name, head in self.classifiers.items():
            out[f"{name}_logits"] = head(f)
        if self.au_head is not None:
            out[f"{self.au_task.name}_logits"] = self.au_head(m)
        return out


@register_model
def medn(tasks: Sequence[Task] | None = None, backbone: str = "tiny_vit", weights: str | os.PathLike | None = None, mode: str | int = "finetune",
         clip_input: bool = True, branches: Literal["both", "motion", "emotion"] = "both",
         au_head: bool = True, au_task: str | None = None, motion_dim: int = 64, motion_width: int = 16,
         emotion_dim: int = 64, rates: Sequence[float] = (0.25, 0.5, 0.75), score: Literal["prev", "onset"] = "prev",
         depth: int = 1, heads: int = 2, share_rates: bool = True, combine: Literal["mean", "concat"] = "mean",
         fuse_dropped: bool = False, fusion: Literal["gated", "cross_attention", "sum", "concat"] = "gated",
         fusion_dim: int = 64, dropout: float = 0.3, max_frames: int = 32,
         frame_input: Literal["rgb", "delta"] = "rgb", delta_gain: float = 4.0, **backbone_kwargs: Any) -> MEDN:
    """MEDN over the data's tasks: a classifier per single-label task, the AU head on the first multi-label task
    (``au_task`` names another; ``au_head=False``: none). ``backbone``: SEViT's frame encoder (its tokens)."""
    tasks = resolve_tasks(tasks, model="medn")
    if branches not in BRANCHES:
        raise UnmaskError(f"medn: branches must be one of {', '.join(BRANCHES)}, got {branches!r}")
    classes = tuple(t for t in tasks if t.kind == "single")
    if not classes:
        raise UnmaskError(f"medn needs a single-label task to classify; the data's tasks: {', '.join(t.name for t in tasks)}")
    multi = [t for t in tasks if t.kind == "multi" and (au_task is None or t.name == au_task)]
    if au_task is not None and not multi:
        raise UnmaskError(f"medn: au_task={au_task!r} is not a multi-label task of the data "
                          f"({', '.join(t.name for t in tasks)})")
    use_au = au_head and branches != "emotion" and bool(multi)
    au = multi[0] if use_au else None
    args = dict(name="medn", tasks=tasks, backbone=backbone, mode=mode, branches=branches, au_head=au_head,
                au_task=au_task, motion_dim=motion_dim, motion_width=motion_width, emotion_dim=emotion_dim,
                rates=list(rates), score=score, depth=depth, heads=heads, share_rates=share_rates, combine=combine,
                fuse_dropped=fuse_dropped, fusion=fusion, fusion_dim=fusion_dim, dropout=dropout,
                max_frames=max_frames, frame_input=frame_input, delta_gain=delta_gain, **backbone_kwargs)
    frames_bb = create_backbone(backbone, weights=weights, mode=mode, **backbone_kwargs)
    motion = MotionCNN(motion_dim, motion_width) if branches != "emotion" else None
    token_dim = frames_bb.forward_features(torch.zeros(1, *frames_bb.data_config["input_size"])).shape[-1]
    sevit = (SEViT(token_dim, emotion_dim, rates, score, depth, heads, max_frames, share_rates, combine, fuse_dropped)
             if branches != "motion" else None)
    encoder = MEDNEncoder(frames_bb, motion, sevit, motion_dim, emotion_dim, frame_input, delta_gain)
    chosen = tuple(t for t in tasks if t in classes or t is au)
    return MEDN(encoder, args, chosen, classes=classes, au=au, branches=branches, fusion=fusion,
                fusion_dim=fusion_dim, dropout=dropout, clip_input=clip_input)
