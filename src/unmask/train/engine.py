"""Fit folds: optimiser, early stopping on validation accuracy, best-checkpoint restore, resume.

The heads see either cached backbone features (frozen backbone: ``features`` is ``[V, N, D]``, one view
sampled per image per epoch, view 0 for evaluation) or images through the backbone (the image path, used
for fine-tuning). Either way the head trains as a :class:`unmask.train.stacked.StackedHead`: from the cache,
the heads of all folds of a run train at once as one stack (each fold stops early on its own and leaves the
stack); on the image path a stack of one. So both paths share every line after the backbone.

A fold's randomness is its own: its head's initial weights are drawn with the fold's seed (``fold_seed``:
run seed and fold name), and its batch order, views and dropout masks come from its own generator. Its
results therefore do not depend on the other folds, on their order, on ``--jobs`` or on ``--folds``.

Fold folder::

    log.csv          one row per epoch: loss terms, HSIC bandwidth, validation metrics, seconds (the fold's
                     share of the epoch's wall time when folds train as a stack)
    state.pt         resume state, written atomically at epoch ends (at most every runtime.save_every_s
                     seconds), removed when the fold ends
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
from unmask.train.features import state_digest
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


_TERMS = ("loss", "true_ce", "disguised_ce", "hsic", "hsic_sigma")


class _Member:
    """One fold of a stack: its indices, generator (batch order, views, dropout), log and early-stopping state."""

    def __init__(self, cfg, fold, data, out: Path):
        self.fold, self.out = fold, out
        self.seed = fold_seed(cfg.runtime.seed, fold.name)
        self.gen = torch.Generator().manual_seed(self.seed)
        self.train_idx, self.val_idx, self.test_idx = (data.subset(fold.train), data.subset(fold.val),
                                                       data.subset(fold.test))
        self.state = {"epoch": 0, "best": None, "best_epoch": 0, "best_loss": float("inf"), "best_state": None,
                      "bad_epochs": 0, "log": []}
        self.last_save = time.time()
        self.writer = None


class _Features:
    """Backbone features of index batches ``[F, B]`` -> ``[F, B, D]``: from the cache (one view per image per epoch)
    or from images through the backbone (the image path, F = 1)."""

    def __init__(self, model, data, features, preprocess, device, amp):
        self.model, self.data, self.features = model, data, features
        self.preprocess, self.device, self.amp = preprocess, device, amp

    def __call__(self, idx: torch.Tensor, *, train: bool, views: torch.Tensor | None = None) -> torch.Tensor:
        idx = idx.to(self.device)
        if self.features is not None:
            f = self.features[views.to(self.device) if views is not None else 0, idx]  # [F, B, D] or [F, B, K, D]
        else:
            if idx.shape[0] != 1:
                raise ValueError("the image path trains one fold at a time")
            x = self.preprocess(self.data.images[idx[0].cpu()], train=train).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                if x.dim() == 5:  # clip: [B, K, 3, H, W]
                    b, k = x.shape[:2]
                    f = self.model.backbone.forward_features(x.flatten(0, 1)).view(b, k, -1)
                else:
                    f = self.model.backbone.forward_features(x)
            f = f.float()[None]
        if f.dim() == 4:
            f = f.mean(2)  # clip paradigm: temporal average of frame features
        return f


def _padded(rows: list[np.ndarray | torch.Tensor], width: int | None = None) -> torch.Tensor:
    """Index rows of different lengths -> ``[F, width]`` padded with -1 (valid entries first in every row)."""
    width = width or max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), -1, dtype=torch.long)
    for f, r in enumerate(rows):
        out[f, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


@torch.no_grad()
def _predict_stack(stack, get_features, rows: list[np.ndarray], batch_size: int) -> list[dict[str, np.ndarray]]:
    """Class probabilities per member and task for index rows (eval mode, view 0, no augmentation)."""
    stack.eval()
    get_features.model.eval()
    index = _padded(rows)
    chunks: dict[str, list] = {}
    for start in range(0, index.shape[1], batch_size):
        idx = index[:, start:start + batch_size]
        mask = idx >= 0
        stack.set_batch(mask, ())
        out = stack.forward_head(get_features(idx.clamp_min(0), train=False))
        for task in TASKS:
            if f"{task}_logits" in out:
                chunks.setdefault(task, []).append(out[f"{task}_logits"].float().softmax(-1).cpu())
    probs = {t: torch.cat(v, dim=1).numpy() for t, v in chunks.items()}  # [F, width, C]
    return [{t: p[f, :len(r)] for t, p in probs.items()} for f, r in enumerate(rows)]


@torch.no_grad()
def predict(model, get_features, idx: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """Class probabilities per task of ``model`` (an unstacked model, as its checkpoint will hold it) for ``idx``."""
    model.eval()
    out: dict[str, list] = {}
    for start in range(0, len(idx), batch_size):
        f = get_features(torch.as_tensor(idx[start:start + batch_size])[None], train=False)[0]
        o = model.forward_head(f)
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


def fit_fold(cfg, fold, data, out_dir: str | Path, **kwargs) -> dict:
    """:func:`fit_folds` for one fold; returns its test metrics."""
    return fit_folds(cfg, [fold], data, [out_dir], **kwargs)[0]


def fit_folds(cfg, folds, data, out_dirs, *, features: torch.Tensor | None = None, model=None,
              init: dict | None = None, device: torch.device | None = None, progress: bool = True,
              on_epoch_end=None) -> list[dict]:
    """Train each fold on ``fold.train``, stop early on ``fold.val``, test on ``fold.test``; returns test metrics.

    With cached ``features`` the heads of all unfinished folds train at once as one stack
    (:mod:`unmask.train.stacked`); each fold's result is the same as when it trains alone. The image path
    trains one fold at a time. A fold's head starts from weights drawn with the fold's seed; ``init``
    (:func:`backbone_init`) sets the backbone's (the run passes the backbone that extracted ``features``, so a
    randomly initialised frozen backbone in the checkpoint is the one the heads saw); ``model`` supplies
    the architecture and backbone directly (tests).
    """
    out_dirs = [Path(o) for o in out_dirs]
    results: list[dict | None] = [None] * len(folds)
    for i, out in enumerate(out_dirs):
        if (out / "metrics.json").is_file():
            results[i] = json.loads((out / "metrics.json").read_text())
    todo = [i for i, r in enumerate(results) if r is None]
    if not todo:
        return results
    device = device or resolve_device(cfg.runtime.device)
    if features is None and len(todo) > 1:  # the image path: every fold trains its own backbone copy
        for i in todo:
            results[i] = fit_folds(cfg, [folds[i]], data, [out_dirs[i]], model=copy.deepcopy(model) if model else None,
                                   init=init, device=device, progress=progress, on_epoch_end=on_epoch_end)[0]
        return results
    if model is None:
        torch.manual_seed(cfg.runtime.seed)  # as train_run does: a randomly initialised backbone depends on the seed
        model = build_model(cfg, init)
    model = model.to(device)
    frozen = backbone_frozen(model)
    if features is not None and not frozen:
        raise ValueError("cached features need a frozen backbone")
    if features is not None:
        features = features.to(device)  # once, not once per batch (a no-op on the CPU)
    for i in todo:
        out_dirs[i].mkdir(parents=True, exist_ok=True)
    members = [_Member(cfg, folds[i], data, out_dirs[i]) for i in todo]
    metrics = _train_stack(cfg, members, data, model, features, device, progress, on_epoch_end)
    for i, m in zip(todo, metrics):
        results[i] = m
    return results


def _train_stack(cfg, members: list[_Member], data, model, features, device, progress, on_epoch_end) -> list[dict]:
    from unmask.train.stacked import StackedAdam, StackedHead, head_names, init_head

    frozen = backbone_frozen(model)
    mean, std = normalization(cfg.augment, model.data_config)
    amp = cfg.runtime.amp and device.type == "cuda"
    get_features = _Features(model, data, features, Preprocess(mean, std, build_augment(cfg.augment)), device, amp)
    objective = DSIDObjective(alpha=cfg.loss.alpha, beta=cfg.loss.beta, estimator=cfg.loss.estimator,
                              kernel=cfg.loss.kernel, sigma=cfg.loss.sigma, normalize=cfg.loss.normalize)
    names = head_names(model)
    head_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
    backbone_params = [p for p in model.backbone.parameters() if p.requires_grad]
    trainable = bool(head_params)  # a model without a trainable head (zero-shot) is evaluated as it is
    stack = StackedHead(model, len(members)).to(device) if head_params else None
    optimizer = (StackedAdam(stack.named_parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
                 if stack is not None else None)
    backbone_optimizer = (torch.optim.Adam(backbone_params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
                          if backbone_params else None)
    monitor = monitor_key(cfg)
    order = [m.fold.name for m in members]

    for f, m in enumerate(members):  # initial weights, or the state of an interrupted run
        state_path = m.out / "state.pt"
        if state_path.is_file():
            saved = torch.load(state_path, map_location="cpu", weights_only=False)
            if stack is not None:
                stack.load_member(f, saved["head"])
                optimizer.load_member(f, saved["optimizer"])
            if backbone_optimizer is not None:
                model.backbone.load_state_dict(saved["backbone"])
                backbone_optimizer.load_state_dict(saved["backbone_optimizer"])
            torch.set_rng_state(saved["rng"])
            m.gen.set_state(saved["gen"])
            m.state = saved["state"]
            log.info("fold %s: resuming after epoch %d", m.fold.name, m.state["epoch"])
        else:
            init_head(model, m.seed)  # also seeds torch's global RNG (augmentation on the image path)
            if stack is not None:
                sd = model.state_dict()
                stack.load_member(f, {k: sd[k] for k in names})
        if cfg.runtime.tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            m.writer = SummaryWriter(str(m.out / "tensorboard"))

    def snapshot(f: int) -> dict:  # what a fold's best epoch keeps: its head (and a trained backbone)
        out = stack.member_state(f) if stack is not None else {}
        if not frozen:
            out.update({f"backbone.{k}": v.detach().clone() for k, v in model.backbone.state_dict().items()})
        return out

    # a frozen backbone is the same in every fold's checkpoint: hash it once (it is not trained, so not changed)
    digest = state_digest(model.backbone) if frozen and cfg.model.weights is not None else None
    n_views = features.shape[0] if features is not None else 1
    bs, epochs, patience = cfg.optim.batch_size, cfg.optim.epochs if trainable else 0, cfg.optim.patience
    bar = tqdm(total=sum(max(epochs - m.state["epoch"], 0) for m in members), unit="ep", leave=False,
               desc=f"fold {members[0].fold.name}" if len(members) == 1 else f"{len(members)} folds",
               disable=not progress)
    results: dict[str, dict] = {}
    while True:
        done = [f for f, m in enumerate(members) if m.state["epoch"] >= epochs or m.state["bad_epochs"] >= patience]
        for f in done:
            m = members[f]
            bar.total -= max(epochs - m.state["epoch"], 0)  # stopped early: its remaining epochs will not run
            results[m.fold.name] = _finish(cfg, m, data, model, m.state["best_state"] or snapshot(f), get_features,
                                           mean, std, frozen, digest)
        if done:
            keep = [f for f in range(len(members)) if f not in done]
            members = [members[f] for f in keep]
            if stack is not None and members:
                stack.select(keep)
                optimizer.select(keep, stack.named_parameters())
        bar.refresh()
        if not members:
            break
        t0 = time.time()
        n = len(members)
        model.train()  # the backbone's trainable part (image path); frozen parts stay in eval mode
        stack.train()
        perms = [torch.as_tensor(m.train_idx)[torch.randperm(len(m.train_idx), generator=m.gen)] for m in members]
        views = (torch.stack([torch.randint(n_views, (len(data),), generator=m.gen) for m in members])
                 if n_views > 1 else None)  # [F, N]: the view each image shows this epoch
        steps = max(-(-len(p) // bs) for p in perms)
        index = _padded(perms, steps * bs).view(n, steps, bs)
        sums = {k: torch.zeros(n) for k in _TERMS}
        seen = torch.zeros(n)
        for s in range(steps):
            idx = index[:, s]  # [F, bs], -1 = no sample
            counts = (idx >= 0).sum(dim=1)
            active = counts >= 2  # BatchNorm needs two samples: a fold's 1-sample last batch is skipped
            if not active.any():
                continue
            width = int(counts.max())
            idx = idx[:, :width]
            mask = (idx >= 0) & active[:, None]
            safe = idx.clamp_min(0)
            stack.set_batch(mask.to(device), [m.gen for m in members])
            feats = get_features(safe, train=True, views=None if views is None else views.gather(1, safe))
            out = stack.forward_head(feats)
            terms = objective(out, data.true[safe].to(device), data.disguised[safe].to(device), mask=mask.to(device))
            optimizer.zero_grad()
            if backbone_optimizer is not None:
                backbone_optimizer.zero_grad(set_to_none=True)
            terms["loss"].sum().backward()
            optimizer.step(active.tolist())
            if backbone_optimizer is not None:
                backbone_optimizer.step()
            rows = mask.sum(dim=1).float()
            for k in _TERMS:
                if terms[k] is not None:
                    sums[k] += terms[k].detach().float().cpu() * rows
                else:
                    sums.pop(k, None)
            seen += rows
        val = _predict_stack(stack, get_features, [m.val_idx for m in members], bs * 4)
        seconds = round((time.time() - t0) / n, 4)  # each fold's share of the stack's epoch
        for f, m in enumerate(members):
            state = m.state
            state["epoch"] += 1
            row = {"epoch": state["epoch"], **{k: float(v[f]) / max(float(seen[f]), 1.0) for k, v in sums.items()}}
            row.update(_evaluate(val[f], data, m.val_idx, "val_"))
            row["seconds"] = seconds
            score, loss = row.get(f"val_{monitor}", 0.0), row.get(f"val_{monitor.split('_')[0]}_loss", 0.0)
            if state["best"] is None or score > state["best"] or (score == state["best"] and loss < state["best_loss"]):
                state.update(best=score, best_loss=loss, best_epoch=state["epoch"], bad_epochs=0,
                             best_state=snapshot(f))
            else:
                state["bad_epochs"] += 1
            state["log"].append(row)
            # resume state at epoch boundaries only (with the RNG states, so a resumed run replays the same
            # epochs); rate-limited because heads on cached features run many epochs per second
            if time.time() - m.last_save >= cfg.runtime.save_every_s:
                _atomic_save({"head": stack.member_state(f), "optimizer": optimizer.member_state(f),
                              "backbone": None if frozen else model.backbone.state_dict(),
                              "backbone_optimizer": backbone_optimizer.state_dict() if backbone_optimizer else None,
                              "rng": torch.get_rng_state(), "gen": m.gen.get_state(), "state": state},
                             m.out / "state.pt")
                m.last_save = time.time()
            if m.writer:
                for k, v in row.items():
                    if k != "epoch":
                        m.writer.add_scalar(k, v, state["epoch"])
            if on_epoch_end:
                on_epoch_end(state["epoch"], row)
        bar.update(n)
        if n == 1:
            bar.set_postfix({monitor: f"{score:.3f}", "best": f"{members[0].state['best']:.3f}@"
                                                              f"{members[0].state['best_epoch']}"})
        else:
            bar.set_postfix({"folds training": n})
    bar.close()
    return [results[name] for name in order]


def _finish(cfg, m: _Member, data, model, best_state: dict, get_features, mean, std, frozen, digest) -> dict:
    """Write a finished fold: its best epoch's model, log, test predictions, checkpoint and metrics."""
    if m.writer:
        m.writer.close()
    state = m.state
    _load_trainable(model, best_state)
    _write_log(state["log"], m.out / "log.csv")
    probs = predict(model, get_features, m.test_idx, cfg.optim.batch_size * 4)
    _write_predictions(data, m.test_idx, probs, m.out / "predictions.csv")
    prep = data.source.get("prepared", {})
    save_checkpoint(
        m.out / "checkpoint.pt", model, config=cfg.to_dict(),
        preprocess={"input_size": list(model.data_config["input_size"]), "mean": list(mean), "std": list(std),
                    "paradigm": data.paradigm, "detector": prep.get("detector"), "margin": prep.get("margin"),
                    "crop_size": prep.get("size")},
        include_backbone=not frozen or cfg.model.weights is None,
        extra={"fold": m.fold.name, "epoch": state["best_epoch"]}, backbone_sha256=digest)
    fold = m.fold
    metrics = {"fold": fold.name, "train": list(fold.train), "val": list(fold.val), "test": list(fold.test),
               "optimistic": fold.optimistic, "best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
               "monitor": monitor_key(cfg), "val_best": state["best"], "n_test": int(len(m.test_idx))}
    for task, p in probs.items():
        metrics[task] = scores(getattr(data, task)[m.test_idx].numpy(), p.argmax(1))
    (m.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (m.out / "state.pt").unlink(missing_ok=True)
    return metrics


def _load_trainable(model, trainable: dict) -> None:
    """Load a fold's trained state (its head, and its backbone when that trained) into ``model``."""
    model.load_state_dict({**model.state_dict(), **trainable})  # strict: a foreign key is an error


def _write_log(rows: list[dict], path: Path) -> None:
    if not rows:  # a model evaluated without training (zero-shot, off-the-shelf): an empty file, no header
        path.write_text("")
        return
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
