"""What a prediction says about itself: the checkpoint's provenance, the per-face "unlike the training faces"
score and flag, and calibrated probabilities. One object, read from the checkpoint, used by ``unmask predict``
and ``unmask serve`` alike, so the CSV, the JSON and the page carry the same numbers.

Result columns it adds (:data:`TRUST_COLUMNS`), on every row:

* ``ood_score``: the face's (a clip model: the window's) Mahalanobis score (:mod:`unmask.ood`); NaN without a
  face or when the checkpoint has no statistics;
* ``unlike_training``: True when the score is above the threshold set on the validation subjects;
* ``calibrated``: True when the probabilities were temperature-scaled (:mod:`unmask.calibration`);
* ``trained_on``: the checkpoint's provenance in one line (:func:`unmask.provenance.describe`);
* ``note``: on a face row, the plain warnings that go with the reading ("trained only on synthetic faces ...",
  "this face is unlike the faces the model was trained on").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from unmask.calibration import read_calibration, scale_logits
from unmask.ood import Mahalanobis, read_ood
from unmask.provenance import describe, read_provenance, synthetic_warning

if TYPE_CHECKING:
    from unmask.tasks import Task

TRUST_COLUMNS = ["ood_score", "unlike_training", "calibrated", "trained_on", "note"]
UNLIKE = "this face is unlike the faces the model was trained on"


def read_trust_fields(ckpt: dict) -> dict:
    """The checkpoint's ``provenance``, ``calibration`` and ``ood`` records, ``{"known": False}`` where absent."""
    return {"provenance": read_provenance(ckpt), "calibration": read_calibration(ckpt), "ood": read_ood(ckpt)}


class Trust:
    """The trust side of one checkpoint; ``calibrated=False`` keeps the raw softmax / sigmoid."""

    def __init__(self, ckpt: dict, calibrated: bool = True) -> None:
        fields = read_trust_fields(ckpt)
        self.provenance, self.calibration = fields["provenance"], fields["calibration"]
        self.scorer = Mahalanobis.from_record(fields["ood"])
        self.calibrated = bool(calibrated and self.calibration.get("known"))
        self.trained_on = describe(self.provenance)
        self.warning = synthetic_warning(self.provenance)

    def temperature(self, task: Task) -> float | list[float] | None:
        t = self.calibration["temperature"].get(task.name) if self.calibrated else None
        if isinstance(t, list) and len(t) != len(task.labels):  # a model whose task differs from the checkpoint's
            return None
        return t

    def probabilities(self, task: Task, logits: torch.Tensor) -> torch.Tensor:
        """A task's probabilities from its logits, calibrated unless switched off or unknown."""
        return scale_logits(task.kind, logits, self.temperature(task))

    def scores(self, features: np.ndarray) -> np.ndarray:
        """``[N, D]`` pooled backbone features -> ``[N]`` scores (NaN when the checkpoint has no statistics)."""
        if self.scorer is None or features.ndim != 2 or features.shape[1] != self.scorer.means.shape[1]:
            return np.full(len(features), math.nan)
        return self.scorer.score(features)

    def flagged(self, score: float) -> bool:
        return bool(self.scorer is not None and self.scorer.threshold is not None and score == score
                    and score > self.scorer.threshold)

    def fill(self, row: dict, score: float | None) -> None:
        """The trust columns of one row (``score`` None: a row without a face)."""
        row.update(calibrated=self.calibrated, trained_on=self.trained_on)
        if score is None:
            row.update(ood_score=math.nan, unlike_training=False, note="")
            return
        flag = self.flagged(score)
        row.update(ood_score=round(float(score), 4) if score == score else math.nan, unlike_training=flag,
                   note="; ".join(n for n in (UNLIKE if flag else "", self.warning) if n))

    def summary(self) -> dict:
        """For the page header and the terminal: what the model was trained on, and how its readings are made."""
        cal = self.calibration
        if not cal.get("known"):
            calibration = "calibration: unknown (a checkpoint from before calibration was recorded): raw softmax"
        elif not self.calibrated:
            calibration = "calibration: off (--no-calibration): raw softmax"
        else:
            temps = ", ".join(f"{k} T={_fmt(v)}" for k, v in cal["temperature"].items())
            calibration = f"calibrated by temperature scaling on the {cal.get('fitted_on', 'validation subjects')}: {temps}"
        if self.scorer is None:
            ood = "unlike-training score: unknown (a checkpoint from before it was recorded)"
        else:
            ood = (f"unlike-training score: Mahalanobis distance to the training features, flagged above "
                   f"{self.scorer.threshold:.3g} (the 95th percentile on the validation subjects)"
                   if self.scorer.threshold is not None else "unlike-training score: no threshold (no validation)")
        return {"trained_on": self.trained_on, "warning": self.warning, "calibration": calibration, "ood": ood,
                "calibrated": self.calibrated, "provenance_known": bool(self.provenance.get("known")),
                "real_faces": self.provenance.get("real_faces"),
                "threshold": None if self.scorer is None else self.scorer.threshold}


def _fmt(v: float | list[float]) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "[" + " ".join(f"{x:.2f}" for x in v) + "]"


__all__ = ["Trust", "TRUST_COLUMNS", "UNLIKE", "read_trust_fields"]
