"""Hilbert-Schmidt Independence Criterion between two batches of features, ``x [n, dx]`` and ``y [n, dy]``.

Estimators (``estimator=``):

* ``"biased"`` (Gretton et al. 2005): ``tr(K H L H) / (n - 1)^2`` with ``K``, ``L`` the ``n x n`` kernel matrices
  of x and y and ``H = I - 11^T / n``. Always >= 0; needs n >= 2.
* ``"unbiased"`` (Song et al. 2012): with ``K~``, ``L~`` the kernel matrices with zeroed diagonals,
  ``[tr(K~ L~) + 1^T K~ 1 * 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) * 1^T K~ L~ 1] / (n (n-3))``; needs n >= 4,
  can be slightly negative, has no O(1/n) bias.
* ``"paper"``: eq. 2-4 of the DSID paper exactly as printed: per sample
  ``HSIC_i = (k(x_i, y_i) - k(x_i, x_i) * k(y_i, y_i))^2``, then the batch mean.

**Finding (why the default is a real estimator).** The paper L2-normalises the features first. On unit vectors
``k(x, x) = 1`` for both kernels (RBF: ``exp(0)``; linear: ``||x||^2``), so the printed loss is
``(k(x_i, y_i) - 1)^2``, which is zero exactly when ``x_i = y_i``. Minimising it pulls the true and disguised
features of each sample *together*, the opposite of independence. It compares the two features of one sample
and never looks across the batch, so it cannot measure statistical dependence at all. The estimators of
Gretton et al. (the paper's reference [17]) and Song et al. do; ``"paper"`` is kept for reproduction studies.

Kernels: ``"rbf"`` ``k(u, v) = exp(-||u - v||^2 / (2 sigma^2))`` or ``"linear"`` ``k(u, v) = u . v``.
Bandwidth: a fixed ``sigma`` (float) or ``None`` for the median heuristic, computed on detached features
(it is a setting, not something to differentiate through): the median of the non-zero pairwise distances
``||u_i - u_j||, i < j``, separately for x and for y (each feature set gets the scale of its own distances;
1.0 when all rows coincide). For ``"paper"`` one bandwidth is used for the cross kernel: the same median over
the pooled rows of x and y. ``return_sigma=True`` returns ``(value, (sigma_x, sigma_y))`` for logging
(``None`` for the linear kernel).

Everything is computed in float32 with autocast disabled, whatever the input dtype.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import torch
import torch.nn.functional as F

from unmask.errors import UnmaskError

# what return_sigma=True adds: the RBF bandwidths (floats for 2-D inputs, [F] tensors stacked); None (linear)
Sigmas = tuple[float, float] | tuple[torch.Tensor, torch.Tensor] | None

KERNELS = ("rbf", "linear")
ESTIMATORS = ("biased", "unbiased", "paper")


def median_sigma(u: torch.Tensor) -> float:
    """Median of the non-zero pairwise distances between rows of ``u`` (detached); 1.0 if all rows coincide."""
    return float(_median_sigma(u[None], None)[0])


def _median_sigma(u: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """:func:`median_sigma` per member of a stack: ``u [F, n, d]``, ``mask [F, n]`` (rows that count) -> ``[F]``."""
    u = u.detach().float()
    f, n = u.shape[:2]
    dist = torch.cdist(u, u)  # [F, n, n]
    valid = torch.ones(n, n, dtype=torch.bool, device=u.device).triu(1).expand(f, n, n)  # pairs i < j
    if mask is not None:
        valid = valid & mask[:, :, None] & mask[:, None, :]
    valid = valid & (dist > 1e-12)
    dist = dist.masked_fill(~valid, float("inf")).flatten(1).sort(dim=1).values  # [F, n * n], valid ones first
    m = valid.flatten(1).sum(dim=1)  # [F] number of valid pairs
    lo, hi = ((m - 1).clamp_min(0) // 2)[:, None], (m // 2).clamp_max(n * n - 1)[:, None]
    med = (dist.gather(1, lo) + dist.gather(1, hi))[:, 0] / 2  # midpoint median for even m
    return torch.where(m > 0, med, torch.ones_like(med))


def _gram(u: torch.Tensor, kernel: str, sigma: torch.Tensor | None) -> torch.Tensor:  # [F, n, d] -> [F, n, n]
    g = u @ u.transpose(1, 2)
    if kernel == "linear":
        return g
    sq = (u * u).sum(dim=2)  # [F, n]
    d2 = (sq[:, :, None] + sq[:, None, :] - 2.0 * g).clamp_min(0.0)  # [F, n, n] squared distances
    return torch.exp(-d2 / (2.0 * sigma[:, None, None] ** 2))  # type: ignore[index]  # rbf: sigma is given


def _rowwise(a: torch.Tensor, b: torch.Tensor, kernel: str, sigma: torch.Tensor | None) -> torch.Tensor:
    if kernel == "linear":  # [F, n, d] x2 -> [F, n]
        return (a * b).sum(dim=2)
    return torch.exp(-((a - b) ** 2).sum(dim=2) / (2.0 * sigma[:, None] ** 2))  # type: ignore[index]  # rbf: sigma is given


def _biased(k: torch.Tensor, l: torch.Tensor, m: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    # masked centring matrix H = diag(m) - m m^T / n [F, n, n]: zero on padding rows/columns, I - 11^T/n elsewhere
    h = torch.diag_embed(m) - m[:, :, None] * m[:, None, :] / n[:, None, None]
    kh, lh = k @ h, l @ h
    return (kh * lh.transpose(1, 2)).sum(dim=(1, 2)) / (n - 1) ** 2  # tr(K H L H) / (n - 1)^2


def _unbiased(k: torch.Tensor, l: torch.Tensor, m: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    off = (m[:, :, None] * m[:, None, :]) * (1.0 - torch.eye(k.shape[1], device=k.device))  # valid pairs, i != j
    k, l = k * off, l * off  # K~, L~: zero diagonal (and zero padding)
    trace_kl = (k * l.transpose(1, 2)).sum(dim=(1, 2))  # tr(K~ L~)
    sums = k.sum(dim=(1, 2)) * l.sum(dim=(1, 2)) / ((n - 1) * (n - 2))  # 1^T K~ 1 * 1^T L~ 1 / ((n-1)(n-2))
    cross = 2.0 / (n - 2) * (k.sum(dim=1) * l.sum(dim=2)).sum(dim=1)  # 2/(n-2) * 1^T K~ L~ 1
    return (trace_kl + sums - cross) / (n * (n - 3))


@overload
def hsic(x: torch.Tensor, y: torch.Tensor, *, kernel: str = ..., estimator: str = ..., sigma: float | None = ...,
         normalize: bool = ..., return_sigma: Literal[False] = ..., mask: torch.Tensor | None = ...) -> torch.Tensor: ...
@overload
def hsic(x: torch.Tensor, y: torch.Tensor, *, kernel: str = ..., estimator: str = ..., sigma: float | None = ...,
         normalize: bool = ..., return_sigma: Literal[True], mask: torch.Tensor | None = ...
         ) -> tuple[torch.Tensor, Sigmas]: ...
def hsic(x: torch.Tensor, y: torch.Tensor, *, kernel: str = "rbf", estimator: str = "biased",
         sigma: float | None = None, normalize: bool = True, return_sigma: bool = False,
         mask: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, Sigmas]:
    """HSIC between ``x [n, dx]`` and ``y [n, dy]`` (rows paired); a scalar tensor, float32.

    With ``return_sigma=True`` returns ``(value, sigmas)``: ``sigmas = (sigma_x, sigma_y)`` floats for the RBF
    kernel, ``None`` for the linear one.

    Stacked form (many independent batches at once, e.g. the heads of several folds trained together):
    ``x [F, n, dx]``, ``y [F, n, dy]`` and an optional ``mask [F, n]`` (bool; the rows of each member that count,
    padding excluded) give ``[F]`` values, each equal to the 2-D call on that member's valid rows; sigmas are then
    ``[F]`` tensors. A member with fewer valid rows than the estimator needs gets 0 (no term), not an error.
    """
    if kernel not in KERNELS:
        raise UnmaskError(f"unknown HSIC kernel {kernel!r}; expected one of: {', '.join(KERNELS)}")
    if estimator not in ESTIMATORS:
        raise UnmaskError(f"unknown HSIC estimator {estimator!r}; expected one of: {', '.join(ESTIMATORS)}")
    stacked = x.ndim == 3
    if x.ndim not in (2, 3) or y.ndim != x.ndim or x.shape[:-1] != y.shape[:-1]:
        raise ValueError(f"hsic expects x [n, dx] and y [n, dy] (or [F, n, d] stacks) with the same n, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if estimator == "paper" and x.shape[-1] != y.shape[-1]:
        raise UnmaskError(f"the 'paper' HSIC compares x_i with y_i and needs equal widths, got {x.shape[-1]} "
                          f"and {y.shape[-1]}")
    min_n = {"biased": 2, "unbiased": 4, "paper": 1}[estimator]
    if not stacked:
        if mask is not None:
            raise ValueError("mask needs the stacked form x [F, n, d]")
        if x.shape[0] < min_n:
            raise UnmaskError(f"HSIC estimator {estimator!r} needs a batch of at least {min_n} samples, "
                              f"got {x.shape[0]}")
        x, y = x[None], y[None]
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.float(), y.float()  # [F, n, dx], [F, n, dy]
        m = torch.ones(x.shape[:2], device=x.device) if mask is None else mask.float()  # [F, n]
        n = m.sum(dim=1)  # [F]
        ok = n >= min_n
        n = torch.where(ok, n, torch.full_like(n, 8.0))  # any n that keeps the formulas finite; zeroed below
        if normalize:
            x, y = F.normalize(x, dim=2), F.normalize(y, dim=2)
        sigmas: Any = None  # (sigma_x, sigma_y): [F] tensors, floats once unstacked
        if kernel == "rbf":
            if sigma is not None:
                s = torch.full_like(n, float(sigma))
                sigmas = (s, s)
            elif estimator == "paper":
                s = _median_sigma(torch.cat([x, y], dim=1), None if mask is None else torch.cat([mask, mask], 1))
                sigmas = (s, s)
            else:
                sigmas = (_median_sigma(x, mask), _median_sigma(y, mask))
        if estimator == "paper":
            s0 = None if sigmas is None else sigmas[0]
            k_xy = _rowwise(x, y, kernel, s0)  # [F, n]
            k_xx = _rowwise(x, x, kernel, s0)  # (= 1 on unit vectors)
            k_yy = _rowwise(y, y, kernel, s0)
            value = (((k_xy - k_xx * k_yy) ** 2) * m).sum(dim=1) / n
        else:
            k = _gram(x, kernel, None if sigmas is None else sigmas[0])  # [F, n, n]
            l = _gram(y, kernel, None if sigmas is None else sigmas[1])
            value = (_biased if estimator == "biased" else _unbiased)(k, l, m, n)
        value = torch.where(ok, value, torch.zeros_like(value))
    if not stacked:
        value = value[0]
        if sigmas is not None:
            sigmas = (float(sigma),) * 2 if sigma is not None else (float(sigmas[0][0]), float(sigmas[1][0]))
    return (value, sigmas) if return_sigma else value
