"""The IFDD objective: cross-entropy per task (with label smoothing) + the lifting context constraint.

``outputs`` hold ``<task>_logits`` ``[B, C]`` and ``context_residual`` ``[B, N]`` (:class:`unmask.models.ifdd.IFDD`:
the mean over channels and time of the local frame-pair average minus the updated context ``A'``). The
constraint is ``context_weight * SmoothL1(r, 0)``, the low-pass property of lifting (the updated context stays
close to a local average of the input), averaged over the batch (the release sums it over the batch, which ties
its weight to the batch size). ``context_weight=0`` turns it off (an ablation). Stacked form as every
objective (:mod:`unmask.losses.terms`): ``[F, B, ...]`` with a mask ``[F, B]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unmask.losses.terms import as_stack, term_name, unstack
from unmask.tasks import Task


def context_loss(residual: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SmoothL1(r, 0) per member, averaged over the positions and the rows that count: ``residual [F, B, N]``,
    ``mask [F, B]`` -> ``[F]``."""
    per_row = F.smooth_l1_loss(residual.float(), torch.zeros_like(residual, dtype=torch.float32),
                               reduction="none").mean(-1)  # [F, B]
    m = mask.float()
    return (per_row * m).sum(1) / m.sum(1).clamp_min(1)


def smoothed_ce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy with label smoothing per member over labelled rows that count: ``[F, B, C]``, ``[F, B]``."""
    m = (mask & (labels >= 0)).float()
    ce = F.cross_entropy(logits.float().flatten(0, 1), labels.long().clamp_min(0).flatten(), reduction="none",
                         label_smoothing=smoothing).view(labels.shape)
    return (ce * m).sum(1) / m.sum(1).clamp_min(1)


class IFDDObjective(nn.Module):
    def __init__(self, tasks: Sequence[Task], context_weight: float = 0.1, label_smoothing: float = 0.1):
        super().__init__()
        self.tasks = tuple(t for t in tasks if t.kind == "single")
        if not self.tasks:
            raise ValueError("the ifdd objective needs a single-label task")
        self.context_weight, self.label_smoothing = float(context_weight), float(label_smoothing)

    def forward(self, outputs: dict, targets: dict, mask: torch.Tensor | None = None) -> dict:
        outputs, targets, m, stacked = as_stack(outputs, targets, mask, f"{self.tasks[0].name}_logits")
        terms = {}
        loss: Any = None
        for task in self.tasks:
            value = smoothed_ce(outputs[f"{task.name}_logits"], targets[task.name], m, self.label_smoothing)
            loss = value if loss is None else loss + value
            terms[term_name(task)] = value.detach()
        if self.context_weight > 0:
            ctx = context_loss(outputs["context_residual"], m)
            loss = loss + self.context_weight * ctx
            terms["context"] = ctx.detach()
        return unstack({"loss": loss, **terms}, stacked)
