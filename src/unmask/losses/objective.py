"""The DSID objective, eq. 1: ``L = L_T + beta * L_D + alpha * L_HSIC``.

Each term is computed only when it can matter: ``L_T`` when the outputs hold ``true_logits``; ``L_D`` when they
hold ``disguised_logits`` and ``beta > 0``; ``L_HSIC`` when they hold both ``true_features`` and
``disguised_features`` and ``alpha > 0`` (``alpha=0`` is "DSID without HSIC": :func:`hsic` is not called).
A term not computed is reported as 0.0. ``beta`` weighs ``L_D`` *against* ``L_T``; when the outputs have no
``true_logits`` (a disguised-only single-stream model) the disguised cross-entropy is the whole loss, weight 1.

Default estimator: ``"biased"`` (Gretton et al. 2005). It is non-negative, so as a loss its minimum (0) means
"no dependence detected", and it is defined from n = 2, so small batches (LOSO folds, last batches) work.
The unbiased estimator can go negative, so minimising it rewards sampling noise below zero, and needs n >= 4;
its O(1/n) bias advantage matters for testing independence, not for a penalty at a fixed batch size.
``estimator="paper"`` reproduces eq. 2-4 as printed (see :mod:`unmask.losses.hsic` for why it pulls the
branches together).

Returned dict: ``loss`` (tensor with graph: call ``backward`` on it), ``true_ce``, ``disguised_ce``, ``hsic``
(detached scalar tensors for logging, 0.0 when not computed) and ``hsic_sigma``: the RBF bandwidth used (float; the mean of sigma_x and sigma_y when the median
heuristic gives each feature set its own), ``None`` for the linear kernel or when HSIC was not computed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unmask.errors import UnmaskError
from unmask.losses.hsic import ESTIMATORS, KERNELS, hsic


class DSIDObjective(nn.Module):
    def __init__(self, alpha: float = 0.5, beta: float = 1.0, estimator: str = "biased", kernel: str = "rbf",
                 sigma: float | None = None, normalize: bool = True):
        super().__init__()
        if estimator not in ESTIMATORS:
            raise UnmaskError(f"unknown HSIC estimator {estimator!r}; expected one of: "
                              f"{', '.join(ESTIMATORS)}")
        if kernel not in KERNELS:
            raise UnmaskError(f"unknown HSIC kernel {kernel!r}; expected one of: {', '.join(KERNELS)}")
        if alpha < 0 or beta < 0:
            raise UnmaskError(f"loss weights must be >= 0, got alpha={alpha}, beta={beta}")
        self.alpha, self.beta = float(alpha), float(beta)
        self.estimator, self.kernel, self.sigma, self.normalize = estimator, kernel, sigma, normalize

    def forward(self, outputs: dict[str, torch.Tensor], true_labels: torch.Tensor | None = None,
                disguised_labels: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> dict[str, Any]:
        """``outputs`` from a model (logits ``[B, C]``, features ``[B, d]``), labels ``[B]`` (int64).

        Stacked form (the heads of several folds trained at once, :mod:`unmask.train.stacked`): logits
        ``[F, B, C]``, features ``[F, B, d]``, labels ``[F, B]`` and ``mask [F, B]`` (bool, the rows of each member
        that count). Every term is then ``[F]``, member f's value equal to the 2-D call on its valid rows, and
        ``loss`` is ``[F]`` (sum it to train all members at once: their parameters are disjoint).
        """
        has_true = "true_logits" in outputs
        has_disguised = "disguised_logits" in outputs
        if not has_true and not has_disguised:
            raise ValueError(f"outputs hold neither true_logits nor disguised_logits: {sorted(outputs)}")
        ref = outputs["true_logits" if has_true else "disguised_logits"]
        stacked = ref.dim() == 3
        if not stacked:
            if mask is not None:
                raise ValueError("mask needs stacked outputs [F, B, C]")
            outputs = {k: v[None] for k, v in outputs.items()}
            true_labels = None if true_labels is None else true_labels[None]
            disguised_labels = None if disguised_labels is None else disguised_labels[None]
        ref = outputs["true_logits" if has_true else "disguised_logits"]  # [F, B, C]
        m = torch.ones(ref.shape[:2], device=ref.device, dtype=torch.bool) if mask is None else mask
        weights = m.float() / m.sum(dim=1, keepdim=True).clamp_min(1)  # [F, B]: masked mean per member
        zero = ref.new_zeros(ref.shape[0], dtype=torch.float32)
        loss, true_ce, disguised_ce, hsic_value, sigma = zero, zero, zero, zero, None

        if has_true:
            true_ce = _masked_ce(outputs["true_logits"], _labels(true_labels, "true_labels"), weights)
            loss = loss + true_ce
        beta = self.beta if has_true else 1.0
        if has_disguised and beta > 0:
            disguised_ce = _masked_ce(outputs["disguised_logits"], _labels(disguised_labels, "disguised_labels"),
                                      weights)
            loss = loss + beta * disguised_ce
        if self.alpha > 0 and "true_features" in outputs and "disguised_features" in outputs:
            hsic_value, sigmas = hsic(
                outputs["true_features"], outputs["disguised_features"], kernel=self.kernel,
                estimator=self.estimator, sigma=self.sigma, normalize=self.normalize, return_sigma=True,
                mask=m if stacked else None)
            loss = loss + self.alpha * hsic_value
            sigma = None if sigmas is None else (sigmas[0] + sigmas[1]) / 2  # one number to log: their mean
        terms = {"loss": loss, "true_ce": true_ce.detach(), "disguised_ce": disguised_ce.detach(),
                 "hsic": hsic_value.detach(), "hsic_sigma": sigma}
        if not stacked:
            terms = {k: v[0] if torch.is_tensor(v) else v for k, v in terms.items()}
            if torch.is_tensor(terms["hsic_sigma"]):
                terms["hsic_sigma"] = float(terms["hsic_sigma"])
        return terms


def _masked_ce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per member: ``logits [F, B, C]``, ``labels [F, B]``, ``weights [F, B]`` -> ``[F]``."""
    ce = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), reduction="none")  # [F * B]
    return (ce.view(labels.shape) * weights).sum(dim=1)


def _labels(labels: torch.Tensor | None, name: str) -> torch.Tensor:
    if labels is None:
        raise ValueError(f"{name} is required: the outputs hold the matching logits")
    return labels.long()
