"""The DSID objective, eq. 1: ``L = L_T + beta * L_D + alpha * L_HSIC``.

``L_D`` is computed when ``beta > 0``, ``L_HSIC`` when ``alpha > 0`` (``alpha=0`` is "DSID without HSIC":
:func:`hsic` is not called); a term not computed is reported as 0.0. A single-stream model (one task) trains
with the ``tasks`` loss (:mod:`unmask.losses.terms`), not this one.

Default estimator: ``"biased"`` (Gretton et al. 2005). It is non-negative, so as a loss its minimum (0) means
"no dependence detected", and it is defined from n = 2, so small batches (LOSO folds, last batches) work.
The unbiased estimator can go negative, so minimising it rewards sampling noise below zero, and needs n >= 4;
its O(1/n) bias advantage matters for testing independence, not for a penalty at a fixed batch size.
``estimator="paper"`` reproduces eq. 2-4 as printed (see :mod:`unmask.losses.hsic` for why it pulls the
branches together).

Returned dict: ``loss`` (tensor with graph: call ``backward`` on it), ``<true>_ce``, ``<disguised>_ce``, ``hsic``
(detached scalar tensors for logging, 0.0 when not computed) and ``hsic_sigma``: the RBF bandwidth used (float; the mean of sigma_x and sigma_y when the median
heuristic gives each feature set its own), ``None`` for the linear kernel or when HSIC was not computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.losses.hsic import ESTIMATORS, KERNELS, hsic
from unmask.losses.terms import as_stack, masked_ce, unstack
from unmask.tasks import Task, task_by_name


class DSIDObjective(nn.Module):
    """``L = CE(true) + beta * CE(disguised) + alpha * HSIC(true_features, disguised_features)`` over two
    single-label tasks (``true_task``, ``disguised_task``: the names of the model's streams). Shapes as in
    :mod:`unmask.losses.terms`."""

    def __init__(self, tasks: Sequence[Task], alpha: float = 0.5, beta: float = 1.0, estimator: str = "biased",
                 kernel: str = "rbf", sigma: float | None = None, normalize: bool = True,
                 true_task: str | None = None, disguised_task: str | None = None):
        super().__init__()
        if estimator not in ESTIMATORS:
            raise UnmaskError(f"unknown HSIC estimator {estimator!r}; expected one of: "
                              f"{', '.join(ESTIMATORS)}")
        if kernel not in KERNELS:
            raise UnmaskError(f"unknown HSIC kernel {kernel!r}; expected one of: {', '.join(KERNELS)}")
        if alpha < 0 or beta < 0:
            raise UnmaskError(f"loss weights must be >= 0, got alpha={alpha}, beta={beta}")
        tasks = tuple(tasks)
        if len(tasks) < 2 and (true_task is None or disguised_task is None):
            raise UnmaskError(f"the dsid loss needs two single-label tasks (true, disguised); the model predicts "
                              f"{', '.join(t.name for t in tasks)}")
        self.true_task = task_by_name(tasks, true_task or tasks[0].name)
        self.disguised_task = task_by_name(tasks, disguised_task or tasks[1].name)
        self.alpha, self.beta = float(alpha), float(beta)
        self.estimator, self.kernel, self.sigma, self.normalize = estimator, kernel, sigma, normalize

    def forward(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                mask: torch.Tensor | None = None) -> dict[str, Any]:
        t, d = self.true_task.name, self.disguised_task.name
        outputs, targets, m, stacked = as_stack(outputs, targets, mask, f"{t}_logits")
        true_ce = masked_ce(outputs[f"{t}_logits"], targets[t], m)
        loss = true_ce
        disguised_ce = torch.zeros_like(true_ce)
        if self.beta > 0:
            disguised_ce = masked_ce(outputs[f"{d}_logits"], targets[d], m)
            loss = loss + self.beta * disguised_ce
        hsic_value, sigma = torch.zeros_like(true_ce), None
        if self.alpha > 0:
            hsic_value, sigmas = hsic(
                outputs[f"{t}_features"], outputs[f"{d}_features"], kernel=self.kernel,
                estimator=self.estimator, sigma=self.sigma, normalize=self.normalize, return_sigma=True,
                mask=m if stacked else None)
            loss = loss + self.alpha * hsic_value
            sigma = None if sigmas is None else (sigmas[0] + sigmas[1]) / 2  # one number to log: their mean
        return unstack({"loss": loss, f"{t}_ce": true_ce.detach(), f"{d}_ce": disguised_ce.detach(),
                        "hsic": hsic_value.detach(), "hsic_sigma": sigma}, stacked)
