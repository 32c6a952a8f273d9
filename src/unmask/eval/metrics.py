"""Classification metrics (scikit-learn), pooled and per fold, with bootstrap confidence intervals.

UAR (unweighted average recall) is scikit-learn's balanced accuracy; F1 is macro-averaged over the six
emotions (the DSID paper does not say which average it used).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from unmask.emotions import EMOTIONS

METRICS = ("accuracy", "f1", "uar")
LABELS = list(range(len(EMOTIONS)))


def scores(y_true, y_pred) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0)),
        # recall averaged over the classes present in y_true
        "uar": float(balanced_accuracy_score(y_true, y_pred)),
    }


def confusion(y_true, y_pred) -> list[list[int]]:
    return confusion_matrix(y_true, y_pred, labels=LABELS).tolist()


def _from_confusion(cm: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 (over all six labels) and UAR (over the labels present) from a confusion matrix."""
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1).astype(float), cm.sum(0).astype(float)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    return {"accuracy": tp.sum() / cm.sum(), "f1": f1.mean(), "uar": (tp[present] / support[present]).mean()}


def bootstrap_ci(y_true, y_pred, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, list[float]]:
    """Percentile bootstrap CI of each metric, resampling clips with replacement."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(LABELS)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), size=(n_boot, len(y_true)))
    cells = y_true[idx] * k + y_pred[idx]  # [n_boot, n]
    boot = {m: np.empty(n_boot) for m in METRICS}
    for b in range(n_boot):
        s = _from_confusion(np.bincount(cells[b], minlength=k * k).reshape(k, k))
        for m in METRICS:
            boot[m][b] = s[m]
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {m: [float(np.percentile(v, lo)), float(np.percentile(v, hi))] for m, v in boot.items()}


def chance_test(y_true, y_pred, chance: float = 1 / len(EMOTIONS)) -> float:
    """One-sided exact binomial p-value that accuracy exceeds ``chance``."""
    from scipy.stats import binomtest

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(binomtest(int((y_true == y_pred).sum()), len(y_true), chance, alternative="greater").pvalue)


def summarize_task(folds: dict[str, tuple[np.ndarray, np.ndarray]], *, n_boot: int = 1000, seed: int = 0) -> dict:
    """Metrics for one task given ``{fold: (y_true, y_pred)}``: pooled, per fold, mean and std over folds."""
    per_fold = {name: scores(t, p) for name, (t, p) in folds.items()}
    y_true = np.concatenate([t for t, _ in folds.values()])
    y_pred = np.concatenate([p for _, p in folds.values()])
    pooled = scores(y_true, y_pred)
    values = {m: np.array([s[m] for s in per_fold.values()]) for m in METRICS}
    return {
        "n": int(len(y_true)),
        "pooled": pooled,
        "ci95": bootstrap_ci(y_true, y_pred, n_boot=n_boot, seed=seed),
        "fold_mean": {m: float(v.mean()) for m, v in values.items()},
        "fold_std": {m: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for m, v in values.items()},
        "per_fold": per_fold,
        "confusion": confusion(y_true, y_pred),
        "chance": 1 / len(EMOTIONS),
        "p_above_chance": chance_test(y_true, y_pred),
    }
