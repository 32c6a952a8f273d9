"""Temperature scaling per task (Guo et al. 2017), fitted on the validation subjects, and calibration error.

A single-label task gets one temperature ``T``: ``softmax(z / T)``; a multi-label task one per label:
``sigmoid(z_l / T_l)`` (Platt scaling without the bias term, so that no label crosses 0.5 and the predicted
labels stay those of the raw model, as the argmax of a single-label task does). ``T`` minimises the negative
log-likelihood of the validation clips, found by a bounded scalar search over ``log T`` in [-3, 3]
(``scipy.optimize.minimize_scalar``): deterministic, no random numbers drawn.

Fitting reads probabilities (what the evaluation of a fold already produces): for a softmax, ``log p`` differs
from the logits by a constant per row, so ``softmax(log p / T) == softmax(z / T)``; for a sigmoid,
``logit(p) == z``. A clip model evaluated over several windows averages the windows' probabilities first; its
temperature is then that of the averaged distribution.

A checkpoint's ``calibration`` record::

    known          False for a checkpoint from before the record existed (then nothing is rescaled)
    method         "temperature"
    temperature    {task: T} (single-label) or {task: [T per label]} (multi-label)
    fitted_on      "validation subjects" and the number of clips, per task
    val            {task: {"nll_raw", "nll_calibrated", "ece_raw", "ece_calibrated"}}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from unmask.tasks import Task

UNKNOWN: dict = {"known": False}
EPS = 1e-12
BINS = 15  # equal-width confidence bins of the ECE (Guo et al. 2017 use 15)


def _scores(kind: str, p: np.ndarray) -> np.ndarray:
    """Probabilities -> logits up to a per-row constant (softmax) or exactly (sigmoid), float64."""
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS if kind == "multi" else 1.0)
    return np.log(p) if kind == "single" else np.log(p) - np.log1p(-p)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def nll(kind: str, p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the labelled rows (single: class index >= 0; multi: 0/1, NaN skipped)."""
    p, y = np.asarray(p, np.float64), np.asarray(y)
    if kind == "single":
        known = y >= 0
        return float(-np.log(np.clip(p[known, y[known].astype(int)], EPS, 1)).mean()) if known.any() else float("nan")
    known = ~np.isnan(y)
    q = np.clip(p, EPS, 1 - EPS)
    bce = -(np.nan_to_num(y) * np.log(q) + (1 - np.nan_to_num(y)) * np.log(1 - q))
    return float(bce[known].mean()) if known.any() else float("nan")


def scale_probabilities(kind: str, p: np.ndarray, temperature: float | list[float]) -> np.ndarray:
    """Raw probabilities ``[N, C]`` -> temperature-scaled ones (see the module docstring)."""
    t = np.asarray(temperature, np.float64)
    z = _scores(kind, p) / t
    return (_softmax(z) if kind == "single" else _sigmoid(z)).astype(np.float32)


def scale_logits(kind: str, logits: torch.Tensor, temperature: float | list[float] | None) -> torch.Tensor:
    """Logits ``[..., C]`` -> calibrated probabilities (``temperature`` None: the raw softmax / sigmoid)."""
    z = logits.float()
    if temperature is not None:
        z = z / torch.as_tensor(temperature, dtype=torch.float32, device=z.device)
    return z.softmax(-1) if kind == "single" else z.sigmoid()


def _fit_one(loss: Callable[[float], float]) -> float:
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded", options={"xatol": 1e-4})
    log_t = float(res.x) if loss(float(res.x)) <= loss(0.0) else 0.0  # never worse than no scaling
    return float(np.exp(log_t))


def fit_temperature(kind: str, p: np.ndarray, y: np.ndarray) -> float | list[float]:
    """The temperature(s) that minimise the NLL of ``p`` against ``y``; 1.0 where there is nothing to fit."""
    p, y = np.asarray(p, np.float64), np.asarray(y)
    z = _scores(kind, p)
    if kind == "single":
        known = y >= 0
        if known.sum() < 2:
            return 1.0
        zk, yk = z[known], y[known].astype(int)

        def loss(log_t: float) -> float:
            s = zk / np.exp(log_t)
            s = s - s.max(1, keepdims=True)
            return float((np.log(np.exp(s).sum(1)) - s[np.arange(len(yk)), yk]).mean())

        return _fit_one(loss)
    temps = []
    for j in range(z.shape[1]):
        known = ~np.isnan(y[:, j])
        zj, yj = z[known, j], y[known, j]
        if known.sum() < 2 or yj.min() == yj.max():  # one class only: a temperature would only sharpen
            temps.append(1.0)
            continue

        def loss(log_t: float, zj: np.ndarray = zj, yj: np.ndarray = yj) -> float:  # type: ignore[misc]
            s = zj / np.exp(log_t)
            return float((np.logaddexp(0.0, s) - yj * s).mean())  # BCE with logits

        temps.append(_fit_one(loss))
    return temps


def ece(kind: str, p: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: single-label, of the top class's confidence (Guo et al. 2017); multi-label,
    of every labelled (clip, label) probability against its 0/1 target. NaN without labelled rows."""
    conf, hit = reliability_points(kind, p, y)
    if not len(conf):
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(hit[sel].mean() - conf[sel].mean())
    return float(total)


def reliability_points(kind: str, p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(confidence, correct)`` pairs the ECE and the reliability diagram bin."""
    p, y = np.asarray(p, np.float64), np.asarray(y)
    if kind == "single":
        known = y >= 0
        return p[known].max(1), (p[known].argmax(1) == y[known]).astype(float)
    known = ~np.isnan(y)
    return p[known], y[known].astype(float)


def reliability_curve(kind: str, p: np.ndarray, y: np.ndarray, bins: int = BINS) -> dict[str, list[float]]:
    """Per non-empty bin: mean confidence, accuracy (or frequency of the label) and count."""
    conf, hit = reliability_points(kind, p, y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    out: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(bins):
        sel = which == b
        if sel.any():
            out["confidence"].append(float(conf[sel].mean()))
            out["accuracy"].append(float(hit[sel].mean()))
            out["count"].append(int(sel.sum()))
    return out


def fit_calibration(tasks: Sequence[Task], probs: dict[str, np.ndarray], labels: dict[str, np.ndarray], fitted_on: str) -> dict:
    """The ``calibration`` record of a checkpoint from validation ``probs`` and ``labels`` per task."""
    temps, val = {}, {}
    for task in tasks:
        p, y = probs[task.name], labels[task.name]
        t = fit_temperature(task.kind, p, y)
        q = scale_probabilities(task.kind, p, t)
        temps[task.name] = t
        val[task.name] = {"n": int(len(y)), "nll_raw": nll(task.kind, p, y), "nll_calibrated": nll(task.kind, q, y),
                          "ece_raw": ece(task.kind, p, y), "ece_calibrated": ece(task.kind, q, y)}
    return {"known": True, "method": "temperature", "temperature": temps, "fitted_on": fitted_on, "val": val}


def read_calibration(ckpt: dict) -> dict:
    """A checkpoint's calibration record; ``{"known": False}`` for one from before the record existed."""
    rec = ckpt.get("calibration")
    return dict(rec) if isinstance(rec, dict) and rec.get("known") else dict(UNKNOWN)


__all__ = ["fit_temperature", "fit_calibration", "read_calibration", "scale_logits", "scale_probabilities", "ece",
           "nll", "reliability_curve", "reliability_points"]
