"""IFDD (Wang and Chai, arXiv 2412.13168): implicit facial dynamics disentanglement by a learnable lifting scheme.

Written from the paper's description and the digest in docs/ifdd.md (no code copied). Over a feature map
``X [B, C, T, N]`` (T frames, N spatial positions):

* **ISSM** (:class:`ISSM`): per frame ``Z_t = flatten(GELU(conv1x1_{C->k}(X_t)))`` (``k * N`` values), the
  inter-frame similarity ``S = Z Z^T / C`` ``[B, T, T]``; ``softmax(S)`` and ``softmax(-S)`` each feed a
  bias-free ``Linear(T*T -> T/2)`` + ``tanh`` scaled by ``max_offset`` (2 frames): the offsets of the context and
  dynamic split positions from the even (context) and odd (dynamic) base positions. Features are taken at the
  fractional positions by linear interpolation along time, so the positions are differentiable.
  **Our decision** on the released quirk (its normalisation samples about {0, 1.79, 4.07, 6.36} at zero offset
  for T = 8): positions are exact frame indices here, so zero offsets give exactly the even/odd split
  (``positions(...)`` documents the mapping; a test checks it).
* **LADM** (:class:`LADM`): tokens ``A, D [B, M = T/2 * N, C]``. Update: ``A' = A + P_u(CrossAttn(A, D) + V_u(D))``;
  predict: ``D' = D - P_p(CrossAttn(D, A') + V_p(A'))`` (``order="predict_first"`` swaps them: ``D' = D - P(A)``,
  ``A' = A + U(D')``); then a pre-norm self-attention block on ``D'``. **Our decision** on the released quirk
  (no residual around the MLP): the residual is kept (``mlp_residual=True``); ``False`` reproduces the release.
* Head: a learned weighted sum over the M tokens, dropout, one Linear per task.
* Context constraint: ``r = mean_{C, T/2}(G - A')`` with ``G`` the average of adjacent frame pairs of ``X``;
  the model returns ``context_residual`` ``[B, N]``; the ``ifdd`` loss (:mod:`unmask.losses.ifdd`) adds
  ``weight * SmoothL1(r, 0)``, averaged over the batch (**ours**; the release sums over the batch).

Ablation switches (factory arguments): ``issm=False`` (fixed even/odd split), ``ladm=False`` (no update /
predict: A' = A, D' = D), ``order``, and the loss's ``context_weight``.

The head reads per-frame token sequences (``uses_tokens``): ``[B, T, N_tokens, C]`` from a frozen image backbone
(path (b): cached, so the IFDD modules train on a CPU), pooled to a ``grid x grid`` map (a leading class token
is dropped); or the tokens per time step of a video backbone (path (a): ``backbone="mvit_xs"``, fine-tuned end to
end with ``mode="finetune"``; ``frames`` is then its T' time steps, 8 for 16 input frames).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from unmask.errors import UnmaskError
from unmask.models._registry import register_model
from unmask.models.adapters import HeadModel, resolve_tasks
from unmask.models.backbones import Backbone, create_backbone
from unmask.tasks import Task


def base_positions(t: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The even (context) and odd (dynamic) frame indices of a T-frame clip: ``[T/2]`` each."""
    idx = torch.arange(0, t, 2, device=device, dtype=torch.float32)
    return idx, idx + 1


def interpolate_time(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``x [B, C, T, N]`` at fractional time positions ``pos [B, K]`` (clamped to [0, T-1]) by linear
    interpolation -> ``[B, C, K, N]``; differentiable in ``pos``."""
    b, c, t, n = x.shape
    pos = pos.clamp(0, t - 1)
    lo = pos.detach().floor().clamp(max=t - 2 if t > 1 else 0)
    w = (pos - lo)[:, None, :, None]  # [B, 1, K, 1]
    lo = lo.long()
    hi = (lo + 1).clamp(max=t - 1)

    def take(i):
        return torch.gather(x, 2, i[:, None, :, None].expand(b, c, i.shape[1], n))

    return take(lo) * (1 - w) + take(hi) * w


class ISSM(nn.Module):
    """Inter-frame static-dynamic splitting: ``X [B, C, T, N] -> (X_a, X_d [B, C, T/2, N], positions [B, 2, T/2])``."""

    def __init__(self, channels: int, frames: int, positions: int, *, squeeze: int = 7, max_offset: float = 2.0,
                 enabled: bool = True):
        super().__init__()
        if frames % 2:
            raise UnmaskError(f"IFDD needs an even number of frames, got {frames}")
        self.frames, self.max_offset, self.enabled = frames, float(max_offset), bool(enabled)
        self.squeeze = nn.Conv2d(channels, squeeze, 1)
        self.to_context = nn.Linear(frames * frames, frames // 2, bias=False)
        self.to_dynamic = nn.Linear(frames * frames, frames // 2, bias=False)

    def similarity(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T, N] -> [B, T, T]
        z = F.gelu(self.squeeze(x))  # [B, k, T, N]
        z = z.permute(0, 2, 1, 3).flatten(2)  # [B, T, k*N]
        return z @ z.transpose(1, 2) / x.shape[1]

    def offsets(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.similarity(x)
        off_a = self.max_offset * torch.tanh(self.to_context(s.softmax(-1).flatten(1)))  # [B, T/2]
        off_d = self.max_offset * torch.tanh(self.to_dynamic((-s).softmax(-1).flatten(1)))
        return off_a, off_d

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, _, t, _ = x.shape
        if t != self.frames:
            raise UnmaskError(f"IFDD was built for {self.frames} frames, got a clip of {t}")
        even, odd = base_positions(t, x.device)
        if self.enabled:
            off_a, off_d = self.offsets(x)
        else:
            off_a = off_d = x.new_zeros(b, t // 2)
        pos_a, pos_d = even + off_a, odd + off_d  # [B, T/2] each
        return interpolate_time(x, pos_a), interpolate_time(x, pos_d), torch.stack([pos_a, pos_d], 1)


class _Lift(nn.Module):
    """One lifting operator ``Proj(CrossAttn(q=LN(x), kv=LN(y)) + V(LN(y)))``: ``[B, M, C] x [B, M, C] -> [B, M, C]``."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        q, kv = self.norm_q(x), self.norm_kv(y)
        return self.proj(self.attn(q, kv, kv, need_weights=False)[0] + self.value(kv))


class DropPath(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class LADM(nn.Module):
    """Lifting-based aggregation-disentanglement: ``(A, D [B, M, C]) -> (A' context, D''' dynamics)``."""

    def __init__(self, dim: int, heads: int = 8, *, order: Literal["update_first", "predict_first"] = "update_first",
                 enabled: bool = True, mlp_ratio: float = 4.0, drop_path: float = 0.1, dropout: float = 0.0,
                 mlp_residual: bool = True):
        super().__init__()
        if order not in ("update_first", "predict_first"):
            raise UnmaskError(f"LADM order must be update_first or predict_first, got {order!r}")
        self.order, self.enabled, self.mlp_residual = order, bool(enabled), bool(mlp_residual)
        self.update = _Lift(dim, heads, dropout)
        self.predict = _Lift(dim, heads, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def lift(self, a: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The update and predict steps alone: ``(A', D')``."""
        if not self.enabled:
            return a, d
        if self.order == "update_first":
            a = a + self.update(a, d)
            d = d - self.predict(d, a)
        else:
            d = d - self.predict(d, a)
            a = a + self.update(a, d)
        return a, d

    def forward(self, a: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, d = self.lift(a, d)
        h = self.norm1(d)
        d = d + self.drop_path(self.attn(h, h, h, need_weights=False)[0])
        m = self.drop_path(self.mlp(self.norm2(d)))
        return a, (d + m if self.mlp_residual else m)


def tokens_to_map(tokens: torch.Tensor, grid: int) -> torch.Tensor:
    """Per-frame tokens ``[B, T, N, C]`` (a leading class token allowed) -> ``X [B, C, T, grid*grid]``."""
    b, t, n, c = tokens.shape
    side = int(math.isqrt(n))
    prefix = n - side * side
    if side < 1 or prefix > 1:
        raise UnmaskError(f"IFDD reads a square token grid (optionally after one class token); got {n} tokens")
    x = tokens[:, :, prefix:].reshape(b * t, side, side, c).permute(0, 3, 1, 2)  # [B*T, C, s, s]
    if side != grid:
        x = F.adaptive_avg_pool2d(x, grid)
    return x.reshape(b, t, c, grid * grid).permute(0, 2, 1, 3)  # [B, C, T, G]


def token_width(backbone: Backbone) -> int:
    """The channel width of ``backbone.forward_features`` tokens (CLIP: its transformer width, not embed_dim)."""
    size = backbone.data_config["input_size"][-1]
    blank = backbone.probe() if hasattr(backbone, "probe") else torch.zeros(1, 3, size, size)  # a video backbone: a clip
    with torch.no_grad():
        was = backbone.training
        probe = backbone.eval().forward_features(blank)
        backbone.train(was)
    return int(probe.shape[-1])


class IFDD(HeadModel):
    uses_tokens = True
    default_loss = "ifdd"

    def __init__(self, backbone: Backbone, model_args: dict[str, Any], tasks: Sequence[Task], *, frames: int,
                 grid: int, dim: int | None, heads: int, issm: bool, ladm: bool, order: str, mlp_ratio: float,
                 drop_path: float, dropout: float, mlp_residual: bool, clip_input: bool = True):
        super().__init__(backbone, model_args, tasks, clip_input=clip_input)
        width = token_width(backbone)
        dim = int(dim or width)
        if dim % heads:
            raise UnmaskError(f"IFDD: dim {dim} is not divisible by heads {heads}")
        self.frames, self.grid = frames, grid
        self.embed = nn.Identity() if dim == width else nn.Linear(width, dim)
        self.issm = ISSM(dim, frames, grid * grid, enabled=issm)
        self.ladm = LADM(dim, heads, order=order, enabled=ladm, mlp_ratio=mlp_ratio, drop_path=drop_path,
                         mlp_residual=mlp_residual)
        tokens = frames // 2 * grid * grid
        self.pool = nn.Linear(tokens, 1)  # learned weighted sum over the M tokens
        self.dropout = nn.Dropout(dropout)
        self.classifiers = nn.ModuleDict({t.name: nn.Linear(dim, t.num_classes) for t in self.tasks})

    def feature_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, T, N, C_backbone]`` -> ``X [B, dim, T, G]``."""
        if tokens.dim() != 4:
            raise UnmaskError(f"IFDD needs clips of per-frame tokens [B, T, N, C] (data.paradigm=clip); got "
                              f"{tuple(tokens.shape)}")
        return tokens_to_map(self.embed(tokens), self.grid)

    def forward_head(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_map(self.feature_map(tokens))

    def forward_map(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """ISSM + LADM + classifier over a feature map ``X [B, dim, T, G]`` (from per-frame tokens, or from a
        video backbone such as :mod:`unmask.models.mvit_xs`)."""
        b, c, t, g = x.shape
        xa, xd, positions = self.issm(x)  # [B, C, T/2, G] x2
        a = xa.flatten(2).transpose(1, 2)  # [B, M, C]
        d = xd.flatten(2).transpose(1, 2)
        a2, d3 = self.ladm(a, d)
        f = self.pool(d3.transpose(1, 2)).squeeze(-1)  # [B, C]
        local = 0.5 * (x[:, :, 0::2] + x[:, :, 1::2])  # G: adjacent frame pairs [B, C, T/2, G]
        context = a2.transpose(1, 2).reshape(b, c, t // 2, g)
        out = {f"{name}_logits": head(self.dropout(f)) for name, head in self.classifiers.items()}
        out.update(features=f, context_residual=(local - context).mean(dim=(1, 2)), split_positions=positions)
        return out


@register_model
def ifdd(tasks: Sequence[Task] | None = None, backbone: str = "clip_vit_b16", weights: str | os.PathLike | None = None, mode: str | int = "frozen", frames: int = 16,
         grid: int = 7, dim: int | None = None, heads: int = 8, issm: bool = True, ladm: bool = True,
         order: Literal["update_first", "predict_first"] = "update_first", mlp_ratio: float = 4.0,
         drop_path: float = 0.1, dropout: float = 0.5, mlp_residual: bool = True, clip_input: bool = True,
         **backbone_kwargs: Any) -> IFDD:
    """IFDD over per-frame tokens of ``backbone`` (``frames`` per clip, tokens pooled to ``grid x grid``; ``dim``:
    width of the IFDD modules, default the backbone's token width). Ablations: ``issm``, ``ladm``, ``order``."""
    tasks = resolve_tasks(tasks, model="ifdd")
    if not clip_input:
        raise UnmaskError("model 'ifdd' reads clips: set data.paradigm=clip")
    args = dict(name="ifdd", tasks=tasks, backbone=backbone, mode=mode, frames=frames, grid=grid, dim=dim,
                heads=heads, issm=issm, ladm=ladm, order=order, mlp_ratio=mlp_ratio, drop_path=drop_path,
                dropout=dropout, mlp_residual=mlp_residual, **backbone_kwargs)
    bb = create_backbone(backbone, weights=weights, mode=mode, **backbone_kwargs)
    single = tuple(t for t in tasks if t.kind == "single")
    if not single:
        raise UnmaskError("model 'ifdd' classifies: the data needs a single-label task")
    steps = getattr(bb, "time_steps", None)  # a video backbone gives T' time steps, not one map per frame
    if steps is not None and frames != steps:
        raise UnmaskError(f"ifdd over {backbone}: the backbone turns clips of {bb.frames} frames into {steps} time "
                          f"steps; set model.args.ifdd.frames={steps}")
    return IFDD(bb, args, single, frames=frames, grid=grid, dim=dim, heads=heads, issm=issm, ladm=ladm, order=order,
                mlp_ratio=mlp_ratio, drop_path=drop_path, dropout=dropout, mlp_residual=mlp_residual,
                clip_input=clip_input)
