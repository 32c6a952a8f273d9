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

import torch
import torch.nn.functional as F

from unmask.errors import UnmaskError

KERNELS = ("rbf", "linear")
ESTIMATORS = ("biased", "unbiased", "paper")


def median_sigma(u: torch.Tensor) -> float:
    """Median of the non-zero pairwise distances between rows of ``u`` (detached); 1.0 if all rows coincide."""
    u = u.detach().float()
    n = u.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=u.device)
    dist = torch.cdist(u, u)[iu[0], iu[1]]  # [n (n - 1) / 2]
    dist = dist[dist > 1e-12].sort().values
    m = dist.numel()
    return float(dist[(m - 1) // 2] + dist[m // 2]) / 2 if m else 1.0  # midpoint median for even m


def _gram(u: torch.Tensor, kernel: str, sigma: float | None) -> torch.Tensor:  # [n, d] -> [n, n]
    if kernel == "linear":
        return u @ u.t()
    sq = (u * u).sum(dim=1)  # [n]
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (u @ u.t())).clamp_min(0.0)  # [n, n] squared distances
    return torch.exp(-d2 / (2.0 * sigma**2))


def _rowwise(a: torch.Tensor, b: torch.Tensor, kernel: str, sigma: float | None) -> torch.Tensor:  # -> [n]
    if kernel == "linear":
        return (a * b).sum(dim=1)
    return torch.exp(-((a - b) ** 2).sum(dim=1) / (2.0 * sigma**2))


def _biased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    n = k.shape[0]
    h = torch.eye(n, device=k.device) - 1.0 / n  # centring matrix [n, n]
    return torch.trace(k @ h @ l @ h) / (n - 1) ** 2


def _unbiased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    n = k.shape[0]
    k = k - torch.diag_embed(torch.diagonal(k))  # K~: zero diagonal
    l = l - torch.diag_embed(torch.diagonal(l))
    trace_kl = (k * l.t()).sum()  # tr(K~ L~)
    sums = k.sum() * l.sum() / ((n - 1) * (n - 2))  # 1^T K~ 1 * 1^T L~ 1 / ((n-1)(n-2))
    cross = 2.0 / (n - 2) * (k.sum(dim=0) @ l.sum(dim=1))  # 2/(n-2) * 1^T K~ L~ 1
    return (trace_kl + sums - cross) / (n * (n - 3))


def hsic(x: torch.Tensor, y: torch.Tensor, *, kernel: str = "rbf", estimator: str = "biased",
         sigma: float | None = None, normalize: bool = True, return_sigma: bool = False):
    """HSIC between ``x [n, dx]`` and ``y [n, dy]`` (rows paired); a scalar tensor, float32.

    With ``return_sigma=True`` returns ``(value, sigmas)``: ``sigmas = (sigma_x, sigma_y)`` floats for the RBF
    kernel, ``None`` for the linear one.
    """
    if kernel not in KERNELS:
        raise UnmaskError(f"unknown HSIC kernel {kernel!r}; expected one of: {', '.join(KERNELS)}")
    if estimator not in ESTIMATORS:
        raise UnmaskError(f"unknown HSIC estimator {estimator!r}; expected one of: {', '.join(ESTIMATORS)}")
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"hsic expects x [n, dx] and y [n, dy] with the same n, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if estimator == "paper" and x.shape[1] != y.shape[1]:
        raise UnmaskError(f"the 'paper' HSIC compares x_i with y_i and needs equal widths, got {x.shape[1]} "
                          f"and {y.shape[1]}")
    n = x.shape[0]
    min_n = {"biased": 2, "unbiased": 4, "paper": 1}[estimator]
    if n < min_n:
        raise UnmaskError(f"HSIC estimator {estimator!r} needs a batch of at least {min_n} samples, got {n}")
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.float(), y.float()  # [n, dx], [n, dy]
        if normalize:
            x, y = F.normalize(x, dim=1), F.normalize(y, dim=1)
        sigmas = None
        if kernel == "rbf":
            if sigma is not None:
                sigmas = (float(sigma), float(sigma))
            elif estimator == "paper":
                s = median_sigma(torch.cat([x, y], dim=0))
                sigmas = (s, s)
            else:
                sigmas = (median_sigma(x), median_sigma(y))
        if estimator == "paper":
            s = None if sigmas is None else sigmas[0]
            k_xy = _rowwise(x, y, kernel, s)  # [n]
            k_xx = _rowwise(x, x, kernel, s)  # [n] (= 1 on unit vectors)
            k_yy = _rowwise(y, y, kernel, s)
            value = ((k_xy - k_xx * k_yy) ** 2).mean()
        else:
            k = _gram(x, kernel, None if sigmas is None else sigmas[0])  # [n, n]
            l = _gram(y, kernel, None if sigmas is None else sigmas[1])  # [n, n]
            value = _biased(k, l) if estimator == "biased" else _unbiased(k, l)
    return (value, sigmas) if return_sigma else value
