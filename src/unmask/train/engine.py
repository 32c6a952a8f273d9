"""Fit one fold: optimiser, early stopping on validation accuracy, best-checkpoint restore, resume.

The heads see either cached backbone features (frozen backbone: ``features`` is ``[V, N, D]``, one view
sampled per image per epoch, view 0 for evaluation) or images through the backbone (the image path, used
for fine-tuning). Both paths share every other line, so their results mean the same thing.

Fold folder::

    log.csv          one row per epoch: loss terms, HSIC bandwidth, validation metrics, seconds
    state.pt         resume state, rewritten atomically after every epoch, removed when the fold ends
    checkpoint.pt    the best epoch's model (see unmask.checkpoint)
    predictions.csv  test clips: labels, predictions, probabilities
    metrics.json     test metrics; its presence marks the fold finished
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import os
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from unmask.checkpoint import backbone_frozen, save_checkpoint
from unmask.emotions import EMOTIONS
from unmask.eval.metrics import scores
from unmask.losses.objective import DSIDObjective
from unmask.train.transforms import Preprocess, build_augment, normalization

log = logging.getLogger("unmask")
TASKS = ("true", "disguised")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from unmask.errors import UnmaskError
        raise UnmaskError("runtime.device=cuda but no CUDA device is available; use runtime.device=auto or cpu")
    return torch.device(name)


def model_kwargs(cfg) -> dict:
    m = cfg.model
    kw = {"name": m.name, "backbone": m.backbone, "weights": m.weights, "mode": m.mode}
    if m.name in ("dsid", "single_stream"):
        kw.update(adapter_dim=m.adapter_dim, dropout=m.dropout)
    if m.name == "dsid":
        kw.update(branch_dim=m.branch_dim)
    if m.name == "single_stream":
        kw.update(task=m.task)
    if m.img_size is not None:
        kw["img_size"] = m.img_size
    return kw


def build_model(cfg, init: dict | None = None):
    """The model of ``cfg``. ``init`` (:func:`backbone_init` of the run's model) rebuilds the same architecture
    from its resolved ``model_args`` and gives the backbone those weights, instead of loading ``model.weights``
    again in every fold."""
    from unmask.models import create_model
    from unmask.models.weights import restoring_checkpoint

    if init is None:
        return create_model(**model_kwargs(cfg))
    with restoring_checkpoint():
        model = create_model(**init["model_args"])
    model.backbone.load_state_dict(init["backbone"])
    return model


def backbone_init(model) -> dict:
    """What every fold of a run starts from: the run model's architecture and backbone weights."""
    return {"model_args": dict(model.model_args),
            "backbone": {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}}


def fold_seed(seed: int, fold: str) -> int:
    """A fold's seed depends on the run seed and the fold name only (not on order or parallelism)."""
    return zlib.crc32(f"{seed}:{fold}".encode()) & 0x7FFFFFFF


def monitor_key(cfg) -> str:
    if cfg.optim.monitor != "auto":
        return cfg.optim.monitor
    return "disguised_acc" if cfg.model.name == "single_stream" and cfg.model.task == "disguised" else "true_acc"


class _Batches:
    """Runs the model on index batches from cached features or from images."""

    def __init__(self, model, data, features, preprocess, device, amp):
        self.model, self.data, self.features = model, data, features
        self.preprocess, self.device, self.amp = preprocess, device, amp

    def __call__(self, idx: torch.Tensor, *, train: bool, views: torch.Tensor | None = None) -> dict:
        if self.features is not None:
            f = self.features[views if views is not None else 0, idx]  # [B, D] or [B, K, D]
            f = f.to(self.device)
        else:
            x = self.preprocess(self.data.images[idx], train=train).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                if x.dim() == 5:  # clip: [B, K, 3, H, W]
                    b, k = x.shape[:2]
                    f = self.model.backbone.forward_features(x.flatten(0, 1)).view(b, k, -1)
                else:
                    f = self.model.backbone.forward_features(x)
            f = f.float()
        if f.dim() == 3:
            f = f.mean(1)  # clip paradigm: temporal average of frame features, [B, D]
        return self.model.forward_head(f)


@torch.no_grad()
def predict(run_batches, idx: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """Class probabilities per task for clips ``idx`` (eval mode, view 0, no augmentation)."""
    run_batches.model.eval()
    out: dict[str, list] = {}
    for start in range(0, len(idx), batch_size):
        o = run_batches(torch.as_tensor(idx[start:start + batch_size]), train=False)
        for task in TASKS:
            if f"{task}_logits" in o:
                out.setdefault(task, []).append(o[f"{task}_logits"].float().softmax(-1).cpu())
    return {t: torch.cat(v).numpy() for t, v in out.items()}


def _evaluate(probs: dict, data, idx: np.ndarray, prefix: str) -> dict:
    row = {}
    for task, p in probs.items():
        y = getattr(data, task)[idx].numpy()
        row[f"{prefix}{task}_acc"] = float((p.argmax(1) == y).mean())
        row[f"{prefix}{task}_loss"] = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
    return row


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fit_fold(cfg, fold, data, out_dir: str | Path, *, features: torch.Tensor | None = None, model=None,
             init: dict | None = None, device: torch.device | None = None, progress: bool = True,
             on_epoch_end=None) -> dict:
    """Train on ``fold.train``, stop early on ``fold.val``, test on ``fold.test``; returns test metrics.

    ``init`` (:func:`backbone_init`) sets the backbone's starting weights: the run passes the backbone that
    extracted ``features``, so a randomly initialised frozen backbone in the checkpoint is the one the heads saw.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    device = device or resolve_device(cfg.runtime.device)
    seed = fold_seed(cfg.runtime.seed, fold.name)
    torch.manual_seed(seed)
    model = (model or build_model(cfg, init)).to(device)
    frozen = backbone_frozen(model)
    if features is not None and not frozen:
        raise ValueError("cached features need a frozen backbone")
    mean, std = normalization(cfg.augment, model.data_config)
    amp = cfg.runtime.amp and device.type == "cuda"
    if features is not None:
        features = features.to(device)  # once per fold, not once per batch (a no-op on the CPU)
    batches = _Batches(model, data, features, Preprocess(mean, std, build_augment(cfg.augment)), device, amp)
    objective = DSIDObjective(alpha=cfg.loss.alpha, beta=cfg.loss.beta, estimator=cfg.loss.estimator,
                              kernel=cfg.loss.kernel, sigma=cfg.loss.sigma, normalize=cfg.loss.normalize)
    train_idx, val_idx, test_idx = data.subset(fold.train), data.subset(fold.val), data.subset(fold.test)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay) if params else None
    gen = torch.Generator().manual_seed(seed)
    monitor = monitor_key(cfg)
    state = {"epoch": 0, "best": None, "best_epoch": 0, "best_loss": float("inf"), "best_state": None,
             "bad_epochs": 0, "log": []}
    state_path = out / "state.pt"
    if state_path.is_file():  # resume
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        _load_trainable(model, saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
        gen.set_state(saved["gen"])
        state = saved["state"]
        log.info("fold %s: resuming after epoch %d", fold.name, state["epoch"])
    writer = None
    if cfg.runtime.tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out / "tensorboard"))

    n_views = features.shape[0] if features is not None else 1
    bs = cfg.optim.batch_size
    epochs = cfg.optim.epochs if optimizer else 0
    bar = tqdm(total=epochs, initial=state["epoch"], desc=f"fold {fold.name}", unit="ep", disable=not progress,
               leave=False)
    last_save = time.time()
    while state["epoch"] < epochs and state["bad_epochs"] < cfg.optim.patience:
        t0 = time.time()
        model.train()
        perm = torch.as_tensor(train_idx)[torch.randperm(len(train_idx), generator=gen)]
        views = torch.randint(n_views, (len(data),), generator=gen) if n_views > 1 else None
        sums: dict[str, float] = {}
        n_seen = 0
        for start in range(0, len(perm), bs):
            idx = perm[start:start + bs]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            o = batches(idx, train=True, views=None if views is None else views[idx])
            terms = objective(o, data.true[idx].to(device), data.disguised[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            for k, v in terms.items():
                if v is not None:
                    sums[k] = sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v) * len(idx)
            n_seen += len(idx)
        state["epoch"] += 1
        row = {"epoch": state["epoch"], **{k: v / max(n_seen, 1) for k, v in sums.items()}}
        row.update(_evaluate(predict(batches, val_idx, bs * 4), data, val_idx, "val_"))
        row["seconds"] = round(time.time() - t0, 3)
        score, loss = row.get(f"val_{monitor}", 0.0), row.get(f"val_{monitor.split('_')[0]}_loss", 0.0)
        if state["best"] is None or score > state["best"] or (score == state["best"] and loss < state["best_loss"]):
            state.update(best=score, best_loss=loss, best_epoch=state["epoch"], bad_epochs=0,
                         best_state=copy.deepcopy(_trainable_state(model, frozen)))
        else:
            state["bad_epochs"] += 1
        state["log"].append(row)
        # resume state at epoch boundaries only (with the RNG states, so a resumed run replays the same
        # epochs); rate-limited because heads on cached features run many epochs per second
        if time.time() - last_save >= cfg.runtime.save_every_s:
            _atomic_save({"model": _trainable_state(model, frozen), "optimizer": optimizer.state_dict(),
                          "rng": torch.get_rng_state(), "gen": gen.get_state(), "state": state}, state_path)
            last_save = time.time()
        if writer:
            for k, v in row.items():
                if k != "epoch":
                    writer.add_scalar(k, v, state["epoch"])
        bar.update(1)
        bar.set_postfix({monitor: f"{score:.3f}", "best": f"{state['best']:.3f}@{state['best_epoch']}"})
        if on_epoch_end:
            on_epoch_end(state["epoch"], row)
    bar.close()
    if writer:
        writer.close()

    if state["best_state"] is not None:
        _load_trainable(model, state["best_state"])
    _write_log(state["log"], out / "log.csv")
    probs = predict(batches, test_idx, bs * 4)
    _write_predictions(data, test_idx, probs, out / "predictions.csv")
    prep = data.source.get("prepared", {})
    save_checkpoint(
        out / "checkpoint.pt", model, config=cfg.to_dict(),
        preprocess={"input_size": list(model.data_config["input_size"]), "mean": list(mean), "std": list(std),
                    "paradigm": data.paradigm, "detector": prep.get("detector"), "margin": prep.get("margin"),
                    "crop_size": prep.get("size")},
        include_backbone=not frozen or cfg.model.weights is None,
        extra={"fold": fold.name, "epoch": state["best_epoch"]})
    metrics = {"fold": fold.name, "train": list(fold.train), "val": list(fold.val), "test": list(fold.test),
               "optimistic": fold.optimistic, "best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
               "monitor": monitor, "val_best": state["best"], "n_test": int(len(test_idx))}
    for task, p in probs.items():
        metrics[task] = scores(getattr(data, task)[test_idx].numpy(), p.argmax(1))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    state_path.unlink(missing_ok=True)
    return metrics


def _load_trainable(model, trainable: dict) -> None:
    """Load a state from :func:`_trainable_state`: the frozen backbone's weights are the model's own."""
    model.load_state_dict({**model.state_dict(), **trainable})  # strict: a foreign key is an error


def _trainable_state(model, frozen: bool) -> dict:
    sd = model.state_dict()
    return {k: v for k, v in sd.items() if not (frozen and k.startswith("backbone."))}


def _write_log(rows: list[dict], path: Path) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _write_predictions(data, idx: np.ndarray, probs: dict, path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        header = ["clip_id", "subject"]
        for task in probs:
            header += [f"{task}", f"{task}_pred"] + [f"{task}_p_{e}" for e in EMOTIONS]
        w.writerow(header)
        for j, i in enumerate(idx):
            row = [data.clip_ids[i], data.subjects[i]]
            for task, p in probs.items():
                row += [EMOTIONS[int(getattr(data, task)[i])], EMOTIONS[int(p[j].argmax())]]
                row += [f"{x:.5f}" for x in p[j]]
            w.writerow(row)
