"""Per-task loss terms: cross-entropy for single-label tasks, binary cross-entropy for multi-label ones.

Shape contract (every objective here): ``outputs`` hold ``<task>_logits`` ``[B, C]``, ``targets`` hold the
task's labels (int64 ``[B]``, -1 = not annotated; or float ``[B, L]`` 0/1, NaN = not annotated). The stacked
form (the heads of several folds trained at once, as the engine's stacked path does) adds a leading member axis to
both (``[F, B, ...]``) and a bool ``mask [F, B]`` of the rows that count; every term is then ``[F]``, member f's
value equal to the 2-D call on its valid rows. A clip without a label for a task counts for no term of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unmask.tasks import Task


def as_stack(outputs: dict, targets: dict, mask: torch.Tensor | None, ref_key: str
             ) -> tuple[dict, dict, torch.Tensor, bool]:
    """Give 2-D inputs the stacked form ``[1, B, ...]``; returns (outputs, targets, mask [F, B], stacked)."""
    stacked = outputs[ref_key].dim() == 3
    if not stacked:
        if mask is not None:
            raise ValueError("mask needs stacked outputs [F, B, C]")
        outputs = {k: v[None] if torch.is_tensor(v) else v for k, v in outputs.items()}
        targets = {k: v[None] for k, v in targets.items()}
    ref = outputs[ref_key]
    m = torch.ones(ref.shape[:2], device=ref.device, dtype=torch.bool) if mask is None else mask
    return outputs, targets, m, stacked


def unstack(terms: dict, stacked: bool) -> dict:
    """The 2-D call's terms: member 0's scalars (``hsic_sigma`` as a float)."""
    if stacked:
        return terms
    out = {k: v[0] if torch.is_tensor(v) and v.dim() else v for k, v in terms.items()}
    if torch.is_tensor(out.get("hsic_sigma")):
        out["hsic_sigma"] = float(out["hsic_sigma"])
    return out


def masked_ce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per member, averaged over the rows that count and have a label: ``logits [F, B, C]``,
    ``labels [F, B]`` (-1 = none), ``mask [F, B]`` -> ``[F]``."""
    labels = labels.long()
    m = mask & (labels >= 0)
    weights = m.float() / m.sum(dim=1, keepdim=True).clamp_min(1)  # [F, B]: masked mean per member
    ce = F.cross_entropy(logits.float().flatten(0, 1), labels.clamp_min(0).flatten(), reduction="none")  # [F * B]
    return (ce.view(labels.shape) * weights).sum(dim=1)


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per member, averaged over annotated (row, label) pairs: ``logits [F, B, L]``,
    ``labels [F, B, L]`` (NaN = not annotated), ``mask [F, B]`` -> ``[F]``."""
    m = mask[..., None] & ~torch.isnan(labels)  # [F, B, L]
    bce = F.binary_cross_entropy_with_logits(logits.float(), torch.nan_to_num(labels.float()), reduction="none")
    return (bce * m).sum(dim=(1, 2)) / m.sum(dim=(1, 2)).clamp_min(1)


def task_term(task: Task, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (masked_ce if task.kind == "single" else masked_bce)(logits, labels, mask)


def term_name(task: Task) -> str:
    return f"{task.name}_{'ce' if task.kind == 'single' else 'bce'}"


class TaskLosses(nn.Module):
    """``sum_t w_t * L_t`` over the predicted tasks: cross-entropy (single-label) or BCE (multi-label).

    Returned dict: ``loss`` (with graph) and one detached term per task, ``<task>_ce`` or ``<task>_bce``.
    """

    def __init__(self, tasks: Sequence[Task], weights: dict[str, float] | None = None):
        super().__init__()
        self.tasks = tuple(tasks)
        self.weights = {t.name: float((weights or {}).get(t.name, 1.0)) for t in self.tasks}

    def forward(self, outputs: dict, targets: dict, mask: torch.Tensor | None = None) -> dict:
        outputs, targets, m, stacked = as_stack(outputs, targets, mask, f"{self.tasks[0].name}_logits")
        loss = outputs[f"{self.tasks[0].name}_logits"].new_zeros(m.shape[0], dtype=torch.float32)
        terms = {}
        for task in self.tasks:
            value = task_term(task, outputs[f"{task.name}_logits"], targets[task.name], m)
            loss = loss + self.weights[task.name] * value
            terms[term_name(task)] = value.detach()
        return unstack({"loss": loss, **terms}, stacked)
