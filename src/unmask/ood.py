""""Unlike the training faces": a class-conditional Mahalanobis score on the backbone's features (Lee et al. 2018).

The checkpoint keeps the mean backbone feature of each class of the model's first single-label task over the
fold's training clips, and one covariance shared by the classes (Ledoit-Wolf shrinkage,
``sklearn.covariance.LedoitWolf``, on the class-centred features: the training set has fewer clips than the
feature has dimensions). A face's score is its smallest Mahalanobis distance to a class mean::

    score(f) = min_c sqrt((f - mu_c)^T Sigma^-1 (f - mu_c))

The threshold is the 95th percentile of the validation subjects' scores (people the model was not fitted on,
so about 95% of in-distribution faces of new people pass); a face above it is flagged. The features are those
prediction computes (:func:`pooled_features`): the pooled backbone vector, averaged over a clip's frames, so
a clip model (IFDD, MEDN) gets one score per clip (per window in ``unmask predict``). Without a single-label
task the classes are one (a plain Mahalanobis distance to the training mean).

Why Mahalanobis on frozen features rather than the classifier's confidence or an energy score on its logits:
the heads of a model trained on cartoon faces are confident on anything they map into a class region, which is
the failure this score is for (a real angry face read as happiness at 0.97); the backbone's feature space shows
that a real photo lies far from every training cluster. Against kNN (Sun et al. 2022) it stores O(C D + D^2)
numbers instead of the training features themselves, and has no k to choose.

A checkpoint's ``ood`` record::

    known       False for a checkpoint from before the record existed (no score then)
    method      "mahalanobis"
    task        the task whose classes condition the means ("" when none)
    means       [C, D] float32, precision [D, D] float32 (the inverse of the shrunk covariance)
    threshold   the 95th percentile of the validation scores; quantile 0.95
    n_train, n_val, val_flagged (share of the validation faces above the threshold)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from unmask.tasks import Task

UNKNOWN: dict = {"known": False}
QUANTILE = 0.95


def pooled_features(model: Any, f: torch.Tensor) -> torch.Tensor:
    """What the heads see for a batch ``[B, (T,) D]`` (tokens: ``[B, (T,) N, C]``) -> one vector per example
    ``[B, D]``: tokens pooled by the backbone's ``forward_head``, a clip's frames averaged (as ``predict`` does)."""
    if getattr(model, "uses_tokens", False) and not getattr(model, "encodes_clips", False):
        lead = f.shape[:-2]
        f = model.backbone.forward_head(f.flatten(0, -3)).view(*lead, -1)
    if getattr(model, "encodes_clips", False) and f.dim() > 2:
        return f.flatten(1, -2).mean(1)
    return f.mean(1) if f.dim() > 2 else f


def first_single_task(tasks: Sequence[Task]) -> Task | None:
    return next((t for t in tasks if t.kind == "single"), None)


class Mahalanobis:
    """The score of the module docstring; :meth:`fit` then :meth:`set_threshold`, or :meth:`from_record`."""

    def __init__(self, means: np.ndarray, precision: np.ndarray, threshold: float | None = None, task: str = "") -> None:
        self.means = np.asarray(means, np.float64)  # [C, D]
        self.precision = np.asarray(precision, np.float64)  # [D, D]
        self.threshold, self.task = threshold, task
        self.extra: dict = {}

    @classmethod
    def fit(cls, features: np.ndarray, classes: np.ndarray | None = None, task: str = "") -> Mahalanobis:
        """``features [N, D]``; ``classes [N]`` class indices (-1: unlabelled, left out), None: one class."""
        from sklearn.covariance import LedoitWolf

        x = np.asarray(features, np.float64)
        c = np.zeros(len(x), int) if classes is None else np.asarray(classes, int)
        keep = c >= 0
        x, c = x[keep], c[keep]
        labels = np.unique(c)
        means = np.stack([x[c == k].mean(0) for k in labels])
        centred = x - means[np.searchsorted(labels, c)]
        if not np.abs(centred).max(initial=0.0) > 0:  # one clip per class: no spread left, use the global one
            centred = x - x.mean(0)
        # store_precision=False: sklearn would invert the shrunk covariance by an eigendecomposition (0.2 s at
        # D=512, once per fold) that is not used here: the inverse below is of the ridged covariance
        lw = LedoitWolf(assume_centered=True, store_precision=False).fit(centred)
        cov = lw.covariance_
        # a small ridge keeps the inverse finite when the features span fewer dimensions than they have
        cov = cov + np.eye(len(cov)) * max(1e-6 * np.trace(cov) / len(cov), 1e-12)
        out = cls(means, np.linalg.inv(cov), task=task)
        out.extra = {"n_train": int(len(x)), "shrinkage": float(lw.shrinkage_)}
        return out

    def score(self, features: np.ndarray) -> np.ndarray:
        """``[N, D]`` -> ``[N]`` smallest Mahalanobis distance to a class mean."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or not len(x):
            return np.zeros(len(x))
        d = x[:, None, :] - self.means[None]  # [N, C, D]
        m = np.einsum("ncd,ncd->nc", d @ self.precision, d)  # d^T P d, the product through BLAS
        return np.sqrt(np.clip(m.min(1), 0.0, None))

    def set_threshold(self, val_features: np.ndarray) -> float | None:
        """The 95th percentile of the validation faces' scores (None without validation faces)."""
        s = self.score(val_features)
        self.threshold = float(np.quantile(s, QUANTILE)) if len(s) else None
        self.extra.update(n_val=int(len(s)),
                          val_flagged=float((s > self.threshold).mean()) if len(s) else None)
        return self.threshold

    def flags(self, scores: np.ndarray) -> np.ndarray:
        """True where a score is above the threshold (none without a threshold)."""
        if self.threshold is None:
            return np.zeros(len(scores), bool)
        return np.asarray(scores) > self.threshold

    def to_record(self) -> dict:
        return {"known": True, "method": "mahalanobis", "task": self.task, "quantile": QUANTILE,
                "means": torch.from_numpy(self.means.astype(np.float32)),
                "precision": torch.from_numpy(self.precision.astype(np.float32)),
                "threshold": self.threshold, **self.extra}

    @classmethod
    def from_record(cls, rec: dict) -> Mahalanobis | None:
        if not rec.get("known") or rec.get("method") != "mahalanobis":
            return None
        out = cls(torch.as_tensor(rec["means"]).numpy(), torch.as_tensor(rec["precision"]).numpy(),
                  rec.get("threshold"), rec.get("task", ""))
        out.extra = {k: rec[k] for k in ("n_train", "n_val", "val_flagged", "shrinkage") if k in rec}
        return out


def fit_ood(tasks: Sequence[Task], train_features: np.ndarray, train_labels: dict[str, np.ndarray],
            val_features: np.ndarray) -> dict:
    """The ``ood`` record of a checkpoint: fitted on the training features, thresholded on the validation ones."""
    task = first_single_task(tasks)
    classes = None if task is None else np.asarray(train_labels[task.name])
    if not len(train_features) or (classes is not None and not (classes >= 0).any()):
        return dict(UNKNOWN)
    scorer = Mahalanobis.fit(train_features, classes, task.name if task is not None else "")
    scorer.set_threshold(val_features)
    return scorer.to_record()


def read_ood(ckpt: dict) -> dict:
    """A checkpoint's ``ood`` record; ``{"known": False}`` for one from before the record existed."""
    rec = ckpt.get("ood")
    return dict(rec) if isinstance(rec, dict) and rec.get("known") else dict(UNKNOWN)


__all__ = ["Mahalanobis", "fit_ood", "read_ood", "pooled_features", "QUANTILE"]
