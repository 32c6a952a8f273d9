"""Orthogonality between two feature sets, and MEDN's objective built on it.

``orthogonality(x, y)``, the default criterion (``kind="corr"``), is the mean squared cross-correlation of
the two sets' feature dimensions over the batch: centre each dimension over the batch, scale it to unit norm,
``C = X^T Y`` (``[dx, dy]``, every entry a Pearson correlation), ``L = ||C||_F^2 / (dx * dy)``, in ``[0, 1]``:
0 exactly when every dimension of ``x`` is uncorrelated with every dimension of ``y`` over the batch, and
positive otherwise. It is the difference loss of domain separation networks (``||H_c^T H_p||_F^2``) made
scale-free. Options: ``cos2``, the mean over samples of ``cos^2(x_i, y_i)`` (needs ``dx == dy``: sample-wise
orthogonality); ``hsic``, DSID's HSIC (:mod:`unmask.losses.hsic`), a bridge between the two decoupling
criteria. Computed in float32.

``MEDNObjective``: ``CE(emotion) + au_weight * BCE(AUs) + orth_weight * L_orth(motion, emotion features)``,
each term a registered loss (``tasks`` terms, ``orthogonal``); a term whose weight is 0 is not computed (the
no-AU-head and no-orthogonality ablations). The AU BCE is masked where the data has no AU labels (NaN
targets: SMIC in the composite). Returned: ``loss``, ``<task>_ce``, ``<aus>_bce``, ``orth``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.losses.terms import as_stack, task_term, term_name, unstack
from unmask.tasks import Task

KINDS = ("corr", "cos2", "hsic")


def orthogonality(x: torch.Tensor, y: torch.Tensor, kind: str = "corr") -> torch.Tensor:
    """``x [B, dx]``, ``y [B, dy]`` -> scalar (see the module docstring)."""
    with torch.autocast(x.device.type, enabled=False):
        x, y = x.float(), y.float()
        if kind == "corr":
            xc = x - x.mean(0, keepdim=True)
            yc = y - y.mean(0, keepdim=True)
            xc = xc / xc.norm(dim=0, keepdim=True).clamp_min(1e-6)
            yc = yc / yc.norm(dim=0, keepdim=True).clamp_min(1e-6)
            return (xc.T @ yc).pow(2).sum() / (x.shape[1] * y.shape[1])
        if kind == "cos2":
            if x.shape[1] != y.shape[1]:
                raise UnmaskError(f"orthogonality kind cos2 needs equal widths, got {x.shape[1]} and {y.shape[1]}")
            return torch.nn.functional.cosine_similarity(x, y, dim=1, eps=1e-6).pow(2).mean()
        if kind == "hsic":
            from unmask.losses.hsic import hsic

            return hsic(x, y)
    raise UnmaskError(f"unknown orthogonality kind {kind!r}; expected one of: {', '.join(KINDS)}")


def _per_member(fn: Callable[..., torch.Tensor], x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A batch criterion on each member's valid rows: ``x [F, B, dx]``, ``mask [F, B]`` -> ``[F]``."""
    values = [fn(x[f][mask[f]], y[f][mask[f]]) if int(mask[f].sum()) >= 2 else x.new_zeros(())
              for f in range(x.shape[0])]
    return torch.stack(values)


class OrthogonalTerm(nn.Module):
    """``weight * orthogonality(outputs[x], outputs[y])`` alone, a term to compose (like ``hsic``)."""

    def __init__(self, x: str = "motion_features", y: str = "emotion_features", weight: float = 1.0,
                 kind: str = "corr"):
        super().__init__()
        if kind not in KINDS:
            raise UnmaskError(f"unknown orthogonality kind {kind!r}; expected one of: {', '.join(KINDS)}")
        self.x, self.y, self.weight, self.kind = x, y, float(weight), kind

    def forward(self, outputs: dict, targets: dict, mask: torch.Tensor | None = None) -> dict:
        outputs, targets, m, stacked = as_stack(outputs, targets, mask, self.x)
        value = _per_member(lambda a, b: orthogonality(a, b, self.kind), outputs[self.x], outputs[self.y], m)
        return unstack({"loss": self.weight * value, "orth": value.detach()}, stacked)


class MEDNObjective(nn.Module):
    """MEDN's loss over the model's tasks: CE per single-label task, ``au_weight`` x BCE per multi-label task,
    ``orth_weight`` x orthogonality of ``motion_features`` and ``emotion_features``."""

    def __init__(self, tasks: Sequence[Task], au_weight: float = 1.0, orth_weight: float = 0.1,
                 orth: str = "corr"):
        super().__init__()
        if au_weight < 0 or orth_weight < 0:
            raise UnmaskError(f"loss weights must be >= 0, got au_weight={au_weight}, orth_weight={orth_weight}")
        self.tasks = tuple(tasks)
        self.au_weight, self.orth_weight = float(au_weight), float(orth_weight)
        self.orth = OrthogonalTerm(kind=orth)

    def forward(self, outputs: dict, targets: dict, mask: torch.Tensor | None = None) -> dict:
        outputs, targets, m, stacked = as_stack(outputs, targets, mask, f"{self.tasks[0].name}_logits")
        loss = outputs[f"{self.tasks[0].name}_logits"].new_zeros(m.shape[0], dtype=torch.float32)
        terms = {}
        for task in self.tasks:
            weight = 1.0 if task.kind == "single" else self.au_weight
            value = task_term(task, outputs[f"{task.name}_logits"], targets[task.name], m) if weight > 0 else \
                loss.new_zeros(m.shape[0])
            loss = loss + weight * value
            terms[term_name(task)] = value.detach()
        orth = loss.new_zeros(m.shape[0])
        if self.orth_weight > 0 and "motion_features" in outputs:
            orth = _per_member(lambda a, b: orthogonality(a, b, self.orth.kind), outputs["motion_features"],
                               outputs["emotion_features"], m)
            loss = loss + self.orth_weight * orth
        return unstack({"loss": loss, **terms, "orth": orth.detach()}, stacked)
