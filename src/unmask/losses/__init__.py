"""unmask.losses: loss terms and objectives, created by name.

>>> objective = create_loss("dsid", tasks=model.tasks, alpha=0.5)
>>> terms = objective(model(x), {"true": y_true, "disguised": y_disguised})   # {"loss": ..., "true_ce": ...}

Every objective is built from the tasks the model predicts (``tasks``) plus its own arguments, and returns a
dict holding ``loss`` and its named terms (detached), which the engine logs as they come. Registered:

* ``tasks``: cross-entropy per single-label task, BCE per multi-label task (``weights``: per task name);
* ``ce``, ``bce``: one task's term (``task``);
* ``hsic``: ``alpha * HSIC(outputs[x], outputs[y])`` alone (a term to compose; see :mod:`unmask.losses.hsic`);
* ``dsid``: the DSID objective, ``CE(true) + beta * CE(disguised) + alpha * HSIC``;
* ``orthogonal``: ``weight * orthogonality(outputs[x], outputs[y])`` alone (:mod:`unmask.losses.orthogonal`);
* ``medn``: MEDN's objective, ``CE + au_weight * BCE(AUs, masked where unlabelled) + orth_weight * L_orth``.
* ``ifdd``: label-smoothed CE + ``context_weight`` x the lifting context constraint (:mod:`unmask.losses.ifdd`).

A model names its default (``HeadModel.default_loss``, read by ``unmask.models.default_loss``); a config picks another with ``loss.name``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unmask.losses.hsic import hsic
from unmask.losses.objective import DSIDObjective
from unmask.losses.orthogonal import MEDNObjective, OrthogonalTerm, orthogonality
from unmask.losses.terms import TaskLosses, as_stack, task_term, term_name, unstack
from unmask.registry import Registry
from unmask.tasks import Task, task_by_name

LOSSES = Registry("loss")
register_loss = LOSSES.register


class _Single(nn.Module):
    def __init__(self, task: Task, kind: str):
        super().__init__()
        if task.kind != kind:
            raise ValueError(f"task {task.name!r} is {task.kind}-label")
        self.task = task

    def forward(self, outputs: dict, targets: dict, mask: torch.Tensor | None = None) -> dict:
        outputs, targets, m, stacked = as_stack(outputs, targets, mask, f"{self.task.name}_logits")
        value = task_term(self.task, outputs[f"{self.task.name}_logits"], targets[self.task.name], m)
        return unstack({"loss": value, term_name(self.task): value.detach()}, stacked)


class HSICTerm(nn.Module):
    def __init__(self, x: str, y: str, alpha: float, **kwargs: Any):
        super().__init__()
        self.x, self.y, self.alpha, self.kwargs = x, y, float(alpha), kwargs

    def forward(self, outputs: dict, targets: dict, mask: torch.Tensor | None = None) -> dict:
        outputs, targets, m, stacked = as_stack(outputs, targets, mask, self.x)
        value = hsic(outputs[self.x], outputs[self.y], mask=m if stacked else None, **self.kwargs)
        return unstack({"loss": self.alpha * value, "hsic": value.detach()}, stacked)


@register_loss
def tasks(tasks: Sequence[Task], weights: dict[str, float] | None = None) -> TaskLosses:
    return TaskLosses(tasks, weights)


@register_loss
def ce(tasks: Sequence[Task], task: str) -> nn.Module:
    return _Single(task_by_name(tasks, task), "single")


@register_loss
def bce(tasks: Sequence[Task], task: str) -> nn.Module:
    return _Single(task_by_name(tasks, task), "multi")


def _hsic(tasks: Sequence[Task], x: str = "true_features", y: str = "disguised_features", alpha: float = 1.0,
              estimator: str = "biased", kernel: str = "rbf", sigma: float | None = None,
              normalize: bool = True) -> HSICTerm:
    return HSICTerm(x, y, alpha, estimator=estimator, kernel=kernel, sigma=sigma, normalize=normalize)


register_loss(_hsic, name="hsic")


@register_loss
def dsid(tasks: Sequence[Task], alpha: float = 0.5, beta: float = 1.0, estimator: str = "biased", kernel: str = "rbf",
         sigma: float | None = None, normalize: bool = True, true_task: str | None = None,
         disguised_task: str | None = None) -> DSIDObjective:
    return DSIDObjective(tasks, alpha=alpha, beta=beta, estimator=estimator, kernel=kernel, sigma=sigma,
                         normalize=normalize, true_task=true_task, disguised_task=disguised_task)


def _orthogonal(tasks: Sequence[Task], x: str = "motion_features", y: str = "emotion_features", weight: float = 1.0,
                kind: str = "corr") -> OrthogonalTerm:
    return OrthogonalTerm(x, y, weight, kind)


register_loss(_orthogonal, name="orthogonal")


@register_loss
def medn(tasks: Sequence[Task], au_weight: float = 1.0, orth_weight: float = 0.1, orth: str = "corr") -> MEDNObjective:
    return MEDNObjective(tasks, au_weight=au_weight, orth_weight=orth_weight, orth=orth)


@register_loss
def ifdd(tasks: Sequence[Task], context_weight: float = 0.1, label_smoothing: float = 0.1) -> nn.Module:
    from unmask.losses.ifdd import IFDDObjective

    return IFDDObjective(tasks, context_weight=context_weight, label_smoothing=label_smoothing)


def create_loss(name: str, *, tasks: Sequence[Task], **kwargs: Any) -> nn.Module:
    """The objective ``name`` for a model predicting ``tasks``; unknown names or arguments raise UnmaskError."""
    return LOSSES.call(name, tasks=tuple(tasks), **kwargs)


def list_losses() -> list[str]:
    return LOSSES.names()


def check_loss_args(name: str, args: dict[str, Any]) -> None:
    """Check a config's ``loss.args`` against the factory's signature (``tasks`` comes from the model)."""
    from unmask.errors import UnmaskError
    from unmask.registry import check_kwargs

    if "tasks" in args:
        raise UnmaskError("loss.args: tasks come from the model, not from the config")
    check_kwargs(LOSSES.get(name), args, f"loss {name!r}")


__all__ = ["DSIDObjective", "HSICTerm", "LOSSES", "TaskLosses", "check_loss_args", "create_loss", "hsic",
           "list_losses", "orthogonality", "register_loss"]
