"""At the end of a fold: what its checkpoint records to read honestly on new faces (:mod:`unmask.provenance`,
:mod:`unmask.ood`, :mod:`unmask.calibration`).

Everything here runs after the fold's best epoch is restored, in eval mode, on view 0 of the cached features
(or the un-augmented images), and draws no random numbers: the other folds of a stack train on unchanged.
The fold folder also gets ``calibration.json`` (the temperatures and the validation NLL / ECE before and
after), which the report reads beside ``predictions.csv``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from unmask.calibration import fit_calibration
from unmask.io import atomic_write_json
from unmask.ood import fit_ood, pooled_features
from unmask.provenance import dataset_provenance
from unmask.tasks import Task


@torch.no_grad()
def fold_features(model: torch.nn.Module, get_features: Callable[..., torch.Tensor], idx: np.ndarray,
                  batch_size: int) -> np.ndarray:
    """The pooled backbone features ``[N, D]`` of clips ``idx`` (eval: view 0, whole clips, no augmentation)."""
    windows = getattr(get_features, "windows", None)  # T-frame windows of longer clips: averaged, as evaluation does
    out = []
    for start in range(0, len(idx), batch_size):
        chunk = torch.as_tensor(idx[start:start + batch_size], dtype=torch.long)[None]  # [1, B]
        if windows is None:
            out.append(pooled_features(model, get_features(chunk, train=False)[0].float()).cpu())
            continue
        feats = [pooled_features(model, get_features(chunk, train=False, starts=s)[0].float())
                 for s in windows.eval_starts(chunk)]
        out.append(torch.stack(feats).mean(0).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def _labels(data: Any, tasks: Sequence[Task], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {t.name: data.labels[t.name][idx].numpy() for t in tasks}


def fit_trust(trainer: Any, member: Any) -> dict:
    """The checkpoint fields ``provenance``, ``calibration`` and ``ood`` of a finished fold (``trainer``: the
    engine's :class:`~unmask.train.engine.Trainer` with the fold's best model loaded; ``member`` the fold)."""
    from unmask.train.batches import predict_stack
    from unmask.train.plain import PlainHead

    model, data, bs = trainer.model, trainer.data, trainer.cfg.optim.batch_size * 4
    tasks = model.tasks
    fold = member.fold
    prep = data.source.get("prepared", {}) or {}
    prov = dataset_provenance(prep, list(data.subjects), train_subjects=list(fold.train),
                              train_clips=int(len(member.train_idx)), prepared_dir=_prepared_dir(trainer.cfg))
    val_idx, train_idx = member.val_idx, member.train_idx
    fitted_on = f"validation subjects {', '.join(map(str, fold.val))} ({len(val_idx)} clips)"
    if len(val_idx):
        val = predict_stack(PlainHead(model), model, trainer.get_features, [val_idx], bs)[0]
        calibration = fit_calibration(tasks, val, _labels(data, tasks, val_idx), fitted_on)
    else:
        calibration = {"known": False, "why": "no validation subjects"}
    ood = fit_ood(tasks, fold_features(model, trainer.get_features, train_idx, bs), _labels(data, tasks, train_idx),
                  fold_features(model, trainer.get_features, val_idx, bs))
    atomic_write_json(member.out / "calibration.json",
                      {k: v for k, v in calibration.items()} | {"fold": fold.name})
    return {"provenance": prov, "calibration": calibration, "ood": ood}


def _prepared_dir(cfg: object) -> str | None:
    return getattr(getattr(cfg, "data", None), "prepared", None)


__all__ = ["fit_trust", "fold_features"]
