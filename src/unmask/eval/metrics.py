"""Metrics per task (scikit-learn), pooled and per fold, with bootstrap confidence intervals.

Single-label tasks: accuracy, macro-F1 and UAR (unweighted average recall). **Macro averages and chance are over
the classes present among the evaluated clips' labels**: a class of the task that no test clip has has no recall
and no defined F1 (counting its F1 as 0 would scale macro-F1 by present/all, while UAR, scikit-learn's balanced
accuracy, already skips it), so F1 and UAR both average over the K present classes and chance is 1/K. This is the
DFER papers' UAR; in the MER protocols (CASME II, SAMM, SMIC, MEGC composites) every class of the protocol has
test clips, so UF1 is the protocol's. A prediction of an absent class still counts: it is a wrong answer for its
clip (lower recall of that clip's class, lower precision nowhere averaged). Summaries name the absent classes.
The DSID paper does not say which F1 average it used. Multi-label tasks (action units):
per-label F1 (threshold 0.5) and ROC AUC, and their macro averages. Clips without a label for a task (-1, or
NaN for multi-label) are left out of that task's metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score

if TYPE_CHECKING:
    from unmask.tasks import Task

METRICS = ("accuracy", "f1", "uar")  # single-label tasks
MULTI_METRICS = ("macro_f1", "macro_auc")  # multi-label tasks


def present_classes(y_true: ArrayLike, n_classes: int) -> list[int]:
    """The classes (of ``0..n_classes-1``) that at least one clip of ``y_true`` has: the set macro averages and
    chance are taken over."""
    return sorted(int(c) for c in np.unique(np.asarray(y_true)) if 0 <= c < n_classes)


def scores(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 and UAR; F1 and UAR averaged over the classes present in ``y_true``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    present = present_classes(y_true, n_classes)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        # recall averaged over the classes present in y_true (the same set)
        "uar": float(balanced_accuracy_score(y_true, y_pred)),
    }


def multilabel_scores(y_true: ArrayLike, probs: ArrayLike, labels: Sequence[str]) -> dict:
    """``y_true`` 0/1 ``[n, L]`` (NaN rows or cells = not annotated), ``probs [n, L]`` -> per-label F1 (at 0.5) and
    AUC (where a label has both outcomes) and their macro averages over the labels that have them."""
    y_true, probs = np.asarray(y_true, dtype=float), np.asarray(probs, dtype=float)
    known = ~np.isnan(y_true)
    rows = known.all(1)
    if len(labels) > 1 and (known == rows[:, None]).all():
        # every clip annotated for all labels or for none (a dataset without AUs): one scikit-learn call per
        # metric over the label columns, the same numbers as the per-label loop below and many times faster
        # (the bootstrap of a report calls this a thousand times)
        return _multilabel_by_columns(y_true[rows].astype(int), probs[rows], labels)
    f1s, aucs = {}, {}
    for j, label in enumerate(labels):
        known = ~np.isnan(y_true[:, j])
        t, p = y_true[known, j].astype(int), probs[known, j]
        if not len(t):
            continue
        f1s[label] = float(f1_score(t, (p >= 0.5).astype(int), zero_division=0))
        if 0 < t.sum() < len(t):
            aucs[label] = float(roc_auc_score(t, p))
    return {"macro_f1": float(np.mean(list(f1s.values()))) if f1s else float("nan"),
            "macro_auc": float(np.mean(list(aucs.values()))) if aucs else float("nan"),
            "per_label_f1": f1s, "per_label_auc": aucs}


def _multilabel_by_columns(t: np.ndarray, p: np.ndarray, labels: Sequence[str]) -> dict:
    """:func:`multilabel_scores` of fully annotated rows ``t [n, L]`` 0/1 and ``p [n, L]``, L >= 2."""
    f1s, aucs = {}, {}
    if len(t):
        f1 = f1_score(t, (p >= 0.5).astype(int), average=None, zero_division=0)  # per label
        f1s = {label: float(v) for label, v in zip(labels, f1)}
        both = [j for j in range(len(labels)) if 0 < t[:, j].sum() < len(t)]
        if len(both) > 1:
            aucs = {labels[j]: float(v) for j, v in zip(both, roc_auc_score(t[:, both], p[:, both], average=None))}
        elif both:
            aucs = {labels[both[0]]: float(roc_auc_score(t[:, both[0]], p[:, both[0]]))}
    return {"macro_f1": float(np.mean(list(f1s.values()))) if f1s else float("nan"),
            "macro_auc": float(np.mean(list(aucs.values()))) if aucs else float("nan"),
            "per_label_f1": f1s, "per_label_auc": aucs}


def task_scores(task: Task, y_true: ArrayLike, probs: ArrayLike) -> dict:
    """A task's scores from its labels and the model's probabilities (clips without a label left out)."""
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    if task.kind == "multi":
        return multilabel_scores(y_true, probs, task.labels)
    known = y_true >= 0
    return scores(y_true[known], probs[known].argmax(1), task.num_classes)


def confusion(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> list[list[int]]:
    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes))).tolist()


def _from_confusion(cm: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 over ``classes`` (a boolean mask: the classes present in the evaluated set) and UAR over
    the labels present in ``cm`` from a confusion matrix."""
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1).astype(float), cm.sum(0).astype(float)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    return {"accuracy": tp.sum() / cm.sum(), "f1": f1[classes].mean(), "uar": (tp[present] / support[present]).mean()}


def bootstrap_ci(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int, *, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0) -> dict[str, list[float]]:
    """Percentile bootstrap CI of each metric, resampling clips with replacement."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = n_classes
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), size=(n_boot, len(y_true)))
    cells = y_true[idx] * k + y_pred[idx]  # [n_boot, n]
    classes = np.zeros(k, dtype=bool)
    classes[present_classes(y_true, k)] = True  # F1 over the classes of the whole set, as the point estimate
    boot = {m: np.empty(n_boot) for m in METRICS}
    for b in range(n_boot):
        s = _from_confusion(np.bincount(cells[b], minlength=k * k).reshape(k, k), classes)
        for m in METRICS:
            boot[m][b] = s[m]
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {m: [float(np.percentile(v, lo)), float(np.percentile(v, hi))] for m, v in boot.items()}


def chance_test(y_true: ArrayLike, y_pred: ArrayLike, chance: float) -> float:
    """One-sided exact binomial p-value that accuracy exceeds ``chance``."""
    from scipy.stats import binomtest

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(binomtest(int((y_true == y_pred).sum()), len(y_true), chance, alternative="greater").pvalue)


def summarize_task(task: Task, folds: dict[str, tuple[np.ndarray, np.ndarray]], *, n_boot: int = 1000,
                   seed: int = 0) -> dict:
    """Metrics for one task given ``{fold: (y_true, y_pred)}`` (single-label: class indices; multi-label: 0/1
    labels and probabilities): pooled, per fold, mean and std over folds."""
    if task.kind == "multi":
        return _summarize_multilabel(task, folds, n_boot=n_boot, seed=seed)
    k = task.num_classes
    folds = {name: (np.asarray(t)[np.asarray(t) >= 0], np.asarray(p)[np.asarray(t) >= 0])
             for name, (t, p) in folds.items()}
    per_fold = {name: scores(t, p, k) for name, (t, p) in folds.items()}
    y_true = np.concatenate([t for t, _ in folds.values()])
    y_pred = np.concatenate([p for _, p in folds.values()])
    values = {m: np.array([s[m] for s in per_fold.values()]) for m in METRICS}
    present = present_classes(y_true, k)
    chance = 1.0 / max(len(present), 1)  # a guess among the classes the evaluated clips have
    return {
        "kind": "single",
        "labels": list(task.labels),
        "n": int(len(y_true)),
        "pooled": scores(y_true, y_pred, k),
        "ci95": bootstrap_ci(y_true, y_pred, k, n_boot=n_boot, seed=seed),
        "fold_mean": {m: float(v.mean()) for m, v in values.items()},
        "fold_std": {m: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for m, v in values.items()},
        "per_fold": per_fold,
        "confusion": confusion(y_true, y_pred, k),
        "chance": chance,
        "absent_labels": [label for i, label in enumerate(task.labels) if i not in present],
        "p_above_chance": chance_test(y_true, y_pred, chance),
    }


def _summarize_multilabel(task: Task, folds: dict[str, tuple[np.ndarray, np.ndarray]], *, n_boot: int, seed: int) -> dict:
    per_fold = {name: multilabel_scores(t, p, task.labels) for name, (t, p) in folds.items()}
    y_true = np.concatenate([np.asarray(t, dtype=float) for t, _ in folds.values()])
    probs = np.concatenate([np.asarray(p, dtype=float) for _, p in folds.values()])
    pooled = multilabel_scores(y_true, probs, task.labels)
    rng = np.random.default_rng(seed)
    boot: dict[str, list[float]] = {m: [] for m in MULTI_METRICS}
    for _ in range(n_boot):
        idx = rng.integers(0, len(y_true), len(y_true))
        s = multilabel_scores(y_true[idx], probs[idx], task.labels)
        for m in MULTI_METRICS:
            boot[m].append(s[m])
    values = {m: np.array([s[m] for s in per_fold.values()]) for m in MULTI_METRICS}
    return {
        "kind": "multi",
        "labels": list(task.labels),
        "n": int(len(y_true)),
        "pooled": pooled,
        "ci95": {m: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))] for m, v in boot.items()},
        "fold_mean": {m: float(np.nanmean(v)) for m, v in values.items()},
        "fold_std": {m: float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0 for m, v in values.items()},
        "per_fold": per_fold,
        "positives": {label: int(np.nansum(y_true[:, j])) for j, label in enumerate(task.labels)},
    }
