"""What a finished fold leaves on disk, and the per-task evaluation the loop logs.

Fold folder::

    log.csv          one row per epoch: the objective's terms, validation metrics per task, seconds (the fold's
                     share of the epoch's wall time when folds train as a stack)
    state.pt         resume state, written atomically at epoch ends (at most every runtime.save_every_s
                     seconds), removed when the fold ends
    checkpoint.pt    the best epoch's model (see unmask.checkpoint)
    calibration.json the temperatures fitted on the validation subjects (unmask.train.trust)
    predictions.csv  test clips: per task the label, the prediction and the probabilities
    metrics.json     test metrics per task and the tasks themselves; its presence marks the fold finished
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unmask.checkpoint import save_checkpoint
from unmask.eval.metrics import task_scores
from unmask.io import atomic_write_json
from unmask.tasks import tasks_to_list

if TYPE_CHECKING:
    from unmask.data.datasets import FrameData
    from unmask.tasks import Task


def read_finished(out: Path) -> dict | None:
    path = out / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def evaluate(probs: dict, data: FrameData, idx: np.ndarray, tasks: Sequence[Task], prefix: str) -> dict:
    """Validation row per task: accuracy and cross-entropy (single-label), macro-F1 and BCE (multi-label),
    over the clips that have the task's label."""
    row = {}
    for task in tasks:
        p, y = probs[task.name], data.labels[task.name][idx].numpy()
        if task.kind == "single":
            known = y >= 0
            p, y = p[known], y[known]
            row[f"{prefix}{task.name}_acc"] = float((p.argmax(1) == y).mean()) if len(y) else 0.0
            row[f"{prefix}{task.name}_loss"] = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean()) if len(y) else 0.0
        else:
            known = ~np.isnan(y)
            q = np.clip(p, 1e-12, 1 - 1e-12)
            bce = -(np.nan_to_num(y) * np.log(q) + (1 - np.nan_to_num(y)) * np.log(1 - q))
            row[f"{prefix}{task.name}_f1"] = task_scores(task, y, p)["macro_f1"]
            row[f"{prefix}{task.name}_loss"] = float(bce[known].mean()) if known.any() else 0.0
    return row


def finish_fold(trainer: Any, m: Any, best_state: dict) -> dict:
    """``trainer``, ``m``: the engine's Trainer and the fold's Member (typed Any: the engine imports this module).

    Write a finished fold: its best epoch's model, log, test predictions, checkpoint and metrics."""
    from unmask.train.batches import predict_stack
    from unmask.train.plain import PlainHead

    cfg, data, model = trainer.cfg, trainer.data, trainer.model
    if m.writer:
        m.writer.close()
    state = m.state
    model.load_state_dict({**model.state_dict(), **best_state})  # strict: a foreign key is an error
    write_log(state.log, m.out / "log.csv")
    # the test predictions of the model as its checkpoint holds it (unstacked)
    probs = predict_stack(PlainHead(model), model, trainer.get_features, [m.test_idx], cfg.optim.batch_size * 4)[0]
    write_predictions(data, m.test_idx, probs, model.tasks, m.out / "predictions.csv")
    prep = data.source.get("prepared", {})
    from unmask.train.trust import fit_trust  # provenance, calibration, "unlike the training faces" statistics

    trust = fit_trust(trainer, m)
    save_checkpoint(
        m.out / "checkpoint.pt", model, config=cfg.to_dict(),
        preprocess={"input_size": list(model.data_config["input_size"]), "mean": list(trainer.mean),
                    "std": list(trainer.std), "paradigm": data.paradigm, "detector": prep.get("detector"),
                    "margin": prep.get("margin"), "crop_size": prep.get("size"),
                    "clip_frames": cfg.data.window or prep.get("clip_frames"),  # what the model reads per clip
                    "frames": prep.get("frames"), "align": prep.get("align"),
                    "flow": prep.get("flow"), "flow_align": prep.get("flow_align")},
        include_backbone=not trainer.frozen or cfg.model.weights is None,
        extra={"fold": m.fold.name, "epoch": state.best_epoch, **trust}, backbone_sha256=trainer.digest)
    fold = m.fold
    metrics = {"fold": fold.name, "train": list(fold.train), "val": list(fold.val), "test": list(fold.test),
               "optimistic": fold.optimistic, "best_epoch": state.best_epoch, "epochs_run": state.epoch,
               "monitor": trainer.monitor, "val_best": state.best, "n_test": int(len(m.test_idx)),
               "tasks": tasks_to_list(model.tasks)}
    for task in model.tasks:
        metrics[task.name] = task_scores(task, data.labels[task.name][m.test_idx].numpy(), probs[task.name])
    atomic_write_json(m.out / "metrics.json", metrics)
    (m.out / "state.pt").unlink(missing_ok=True)
    return metrics


def write_log(rows: list[dict], path: Path) -> None:
    """One row per epoch; an empty file for a model evaluated as it is (no trainable head, no epochs)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    if not keys:
        path.write_text("")
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def label_text(task: Task, target: Any) -> str:
    """A target (class index, or 0/1 row) as the manifest writes it; empty when not annotated."""
    if task.kind == "single":
        return task.labels[int(target)] if target >= 0 else ""
    if np.isnan(target).any():
        return ""
    return task.format(tuple(label for label, t in zip(task.labels, target) if t >= 0.5))


def write_predictions(data: FrameData, idx: np.ndarray, probs: dict, tasks: Sequence[Task], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        header = ["clip_id", "subject"]
        for task in tasks:
            header += [task.name, f"{task.name}_pred"] + [f"{task.name}_p_{label}" for label in task.labels]
        w.writerow(header)
        for j, i in enumerate(idx):
            row = [data.clip_ids[i], data.subjects[i]]
            for task in tasks:
                p = probs[task.name][j]
                pred = task.predicted(p)
                row += [label_text(task, data.labels[task.name][i].numpy()),
                        pred if task.kind == "single" else task.format(pred)]
                row += [f"{x:.5f}" for x in p]
            w.writerow(row)
