"""Fit folds: optimiser, early stopping on validation, best-checkpoint restore, resume.

The heads see either cached backbone features (frozen backbone: ``features`` is ``[V, N, D]`` or
``[V, N, T, D]`` for clips, one view sampled per clip per epoch, view 0 for evaluation) or images through the
backbone (the image path, for fine-tuning). What the model predicts and how it is trained come from the model
and the data, never from its name: the model's ``tasks`` (a subset of the data's) say which labels are
targets, its ``default_loss`` (or ``loss.name``) picks the objective from :mod:`unmask.losses`, and the
engine logs whatever terms the objective returns.

Two paths share every line of the loop below:

* stacked (:mod:`unmask.train.stacked`): when the head has a stacked form and the optimiser is plain Adam,
  the heads of all folds of a run train at once as one stack (each fold stops early on its own and leaves
  the stack); on the image path a stack of one;
* plain (:mod:`unmask.train.plain`): any ``nn.Module``, one fold at a time, with ``optim.name`` (Adam, AdamW,
  SGD), a schedule with warm-up and gradient clipping.

A fold's randomness is its own: its head's initial weights are drawn with the fold's seed (``fold_seed``:
run seed and fold name), and its batch order, views and (stacked) dropout masks come from its own generator.
Its results therefore do not depend on the other folds, on their order, on ``--jobs`` or on ``--folds``.

Fold folder: see :mod:`unmask.train.outputs`.
"""

from __future__ import annotations

import copy
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from unmask.data.paradigms import is_clip
from unmask.data.transforms import Preprocess, build_augment, normalization
from unmask.errors import UnmaskError
from unmask.io import atomic_torch_save
from unmask.losses import create_loss
from unmask.models import backbone_frozen, create_model
from unmask.models.inference import state_digest
from unmask.runtime import resolve_device, seed_everything
from unmask.train.batches import Features, padded, predict_stack, targets
from unmask.train.mixing import MixPlan, draw_mix
from unmask.train.outputs import evaluate, finish_fold, read_finished
from unmask.train.plain import PlainHead, PlainOptimizer, stackable, stacked_optimiser

if TYPE_CHECKING:
    from unmask.config import Config
    from unmask.data.datasets import FrameData
    from unmask.tasks import Task
    from unmask.train.protocols import Fold

log = logging.getLogger("unmask")


# --- the model and its objective, from the config and the data ----------------------------------------------

def model_kwargs(cfg: Config, tasks: Sequence[Task], clip_input: bool = False) -> dict:
    """``create_model`` arguments: the run's (tasks from the data, backbone, weights, mode) and the model's own
    section of ``model.args``. ``mode`` goes only to factories that take it (the CLIP baselines are frozen)."""
    from unmask.models import MODELS, accepted_kwargs

    m = cfg.model
    kw = {"name": m.name, "tasks": tuple(tasks), "backbone": m.backbone, "weights": m.weights,
          "clip_input": clip_input, **m.backbone_args, **m.args.get(m.name, {})}
    if "mode" in accepted_kwargs(MODELS.get(m.name)):
        kw["mode"] = m.mode
    elif m.mode != "frozen":
        raise UnmaskError(f"model {m.name!r} keeps its backbone frozen; model.mode={m.mode} does not apply")
    return kw


def build_model(cfg: Config, tasks: Sequence[Task] | None = None, clip_input: bool = False, init: dict | None = None) -> Any:
    """The model of ``cfg`` for the data's ``tasks``. ``init`` (:func:`backbone_init` of the run's model) rebuilds
    the same architecture from its resolved ``model_args`` and gives the backbone those weights, instead of
    loading ``model.weights`` again in every fold."""
    from unmask.models.weights import restoring_checkpoint

    if init is None:
        return create_model(**model_kwargs(cfg, tasks, clip_input))
    with restoring_checkpoint():
        model = create_model(**init["model_args"])
    model.backbone.load_state_dict(init["backbone"])
    return model


def backbone_init(model: Any) -> dict:
    """What every fold of a run starts from: the run model's architecture and backbone weights."""
    return {"model_args": dict(model.model_args),
            "backbone": {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}}


def build_objective(cfg: Config, model: Any) -> torch.nn.Module:
    """``loss.name`` (``auto``: the model's default) with its ``loss.args`` section, over the model's tasks."""
    name = model.default_loss if cfg.loss.name == "auto" else cfg.loss.name
    return create_loss(name, tasks=model.tasks, **cfg.loss.args.get(name, {}))


def monitor_key(cfg: Config, model: Any) -> str:
    """The validation metric early stopping watches: ``optim.monitor``, or the first predicted task's accuracy
    (F1 for a multi-label task)."""
    if cfg.optim.monitor != "auto":
        names = {t.name for t in model.tasks}
        if cfg.optim.monitor.rsplit("_", 1)[0] not in names:
            raise UnmaskError(f"optim.monitor={cfg.optim.monitor}: the model predicts "
                              f"{', '.join(sorted(names))} (monitor <task>_acc, or <task>_f1 for multi-label)")
        return cfg.optim.monitor
    first = model.tasks[0]
    return f"{first.name}_{'acc' if first.kind == 'single' else 'f1'}"


def fold_seed(seed: int, fold: str) -> int:
    """A fold's seed depends on the run seed and the fold name only (not on order or parallelism)."""
    return zlib.crc32(f"{seed}:{fold}".encode()) & 0x7FFFFFFF


# --- per-fold state -----------------------------------------------------------------------------------------

@dataclass
class FoldState:
    """One fold's progress: what resume restores and early stopping reads."""
    epoch: int = 0
    best: float | None = None  # best validation score so far
    best_loss: float = float("inf")  # its validation loss (tie-break)
    best_epoch: int = 0
    best_state: dict | None = None  # the head (and a trained backbone) at the best epoch
    bad_epochs: int = 0
    log: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Member:
    """One fold in a stack: its indices, generator (batch order, views, dropout), state and output folder."""

    def __init__(self, cfg: Config, fold: Fold, data: FrameData, out: Path):
        self.fold, self.out = fold, out
        self.seed = fold_seed(cfg.runtime.seed, fold.name)
        self.gen = torch.Generator().manual_seed(self.seed)
        self.train_idx, self.val_idx, self.test_idx = (data.subset(fold.train), data.subset(fold.val),
                                                       data.subset(fold.test))
        self.state = FoldState()
        self.last_save = time.time()
        self.writer = None

    def done(self, epochs: int, patience: int) -> bool:
        return self.state.epoch >= epochs or self.state.bad_epochs >= patience


# --- fitting ------------------------------------------------------------------------------------------------

def fit_fold(cfg: Config, fold: Fold, data: FrameData, out_dir: str | Path, **kwargs: Any) -> dict:
    """:func:`fit_folds` for one fold; returns its test metrics."""
    return fit_folds(cfg, [fold], data, [out_dir], **kwargs)[0]


def fit_folds(cfg: Config, folds: Sequence[Fold], data: FrameData, out_dirs: Sequence[str | Path], *, features: torch.Tensor | None = None, model: Any = None,
              init: dict | None = None, device: torch.device | None = None, progress: bool = True,
              on_epoch_end: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Train each fold on ``fold.train``, stop early on ``fold.val``, test on ``fold.test``; returns test metrics.

    With cached ``features`` and a stackable head the unfinished folds train at once as one stack; each
    fold's result is the same as when it trains alone. The image path and the plain path train one fold at a
    time. A fold's head starts from weights drawn with the fold's seed; ``init`` (:func:`backbone_init`) sets
    the backbone's (the run passes the backbone that extracted ``features``, so a randomly initialised frozen
    backbone in the checkpoint is the one the heads saw); ``model`` supplies the architecture and backbone
    directly (tests).
    """
    out_dirs = [Path(o) for o in out_dirs]
    results = [read_finished(o) for o in out_dirs]
    todo = [i for i, r in enumerate(results) if r is None]
    if not todo:
        return results
    device = device or resolve_device(cfg.runtime.device)
    if model is None:
        seed_everything(cfg.runtime.seed)  # as train_run does: a randomly initialised backbone depends on the seed
        model = build_model(cfg, data.tasks, is_clip(data.paradigm), init)
    why_not = stackable(model) or stacked_optimiser(cfg.optim)
    one_at_a_time = (features is None or why_not is not None) and len(todo) > 1
    if one_at_a_time:  # every fold trains its own copy (the image path also trains the backbone)
        for i in todo:
            results[i] = fit_folds(cfg, [folds[i]], data, [out_dirs[i]], features=features,
                                   model=copy.deepcopy(model), init=init, device=device, progress=progress,
                                   on_epoch_end=on_epoch_end)[0]
        return results
    model = model.to(device)
    if features is not None and not backbone_frozen(model):
        raise ValueError("cached features need a frozen backbone")
    if features is not None:
        features = features.to(device)  # once, not once per batch (a no-op on the CPU)
    for i in todo:
        out_dirs[i].mkdir(parents=True, exist_ok=True)
    members = [Member(cfg, folds[i], data, out_dirs[i]) for i in todo]
    if why_not is not None:
        log.info("plain training path (one fold at a time, torch optimiser): %s", why_not)
    metrics = Trainer(cfg, members, data, model, features, device, stacked=why_not is None).run(progress, on_epoch_end)
    for i, m in zip(todo, metrics):
        results[i] = m
    return results


class Trainer:
    """The epoch loop over a stack of folds: restore-or-init, one epoch, validation, early stopping."""

    def __init__(self, cfg: Config, members: list[Member], data: FrameData, model: Any, features: torch.Tensor | None, device: torch.device, *, stacked: bool):
        from unmask.train.stacked import StackedAdam, StackedHead

        self.cfg, self.members, self.data, self.model, self.device = cfg, members, data, model, device
        self.features = features
        if features is not None and cfg.optim.mix_on == "pixels" and (cfg.optim.mixup > 0 or cfg.optim.cutmix > 0):
            raise UnmaskError("optim.mix_on=pixels mixes the images before the backbone, but this run trains on "
                              "cached features: use model.mode=finetune (or features.cache=never), or "
                              "optim.mix_on=features")
        self.frozen = backbone_frozen(model)
        self.mean, self.std = normalization(cfg.augment, model.data_config)
        amp = cfg.runtime.amp and device.type == "cuda"
        from unmask.train.windows import clip_windows

        self.windows = clip_windows(cfg, data)
        self.get_features = Features(model, data, features, Preprocess(self.mean, self.std, build_augment(cfg.augment)),
                                     device, amp, self.windows)
        self.objective = build_objective(cfg, model)
        self.monitor = monitor_key(cfg, model)
        head_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
        self.trainable = bool(head_params) or not self.frozen  # a zero-shot model is evaluated as it is
        self.backbone_optimizer = None
        if stacked:
            self.stack = StackedHead(model, len(members)).to(device)
            self.optimizer = (StackedAdam(self.stack.named_parameters(), lr=cfg.optim.lr,
                                          weight_decay=cfg.optim.weight_decay) if head_params else None)
            backbone_params = [p for p in model.backbone.parameters() if p.requires_grad]
            if backbone_params:
                self.backbone_optimizer = torch.optim.Adam(backbone_params, lr=cfg.optim.lr,
                                                           weight_decay=cfg.optim.weight_decay)
        else:
            self.stack = PlainHead(model)
            self.optimizer = PlainOptimizer(model, cfg.optim) if self.trainable else None
        # a frozen backbone is the same in every fold's checkpoint: hash it once (it is not trained, so not changed)
        self.digest = state_digest(model.backbone) if self.frozen and cfg.model.weights is not None else None

    # -- restore or init -------------------------------------------------------------------------------
    def restore_or_init(self) -> None:
        from unmask.train.stacked import head_names, init_head

        names = head_names(self.model)
        for f, m in enumerate(self.members):
            saved = load_state(m.out / "state.pt")
            if saved is not None:
                self.stack.load_member(f, saved["head"])
                if self.optimizer is not None:
                    self.optimizer.load_member(f, saved["optimizer"])
                if self.backbone_optimizer is not None:
                    self.model.backbone.load_state_dict(saved["backbone"])
                    self.backbone_optimizer.load_state_dict(saved["backbone_optimizer"])
                elif saved.get("backbone") is not None:
                    self.model.backbone.load_state_dict(saved["backbone"])
                torch.set_rng_state(saved["rng"])
                m.gen.set_state(saved["gen"])
                m.state = FoldState(**saved["state"])
                log.info("fold %s: resuming after epoch %d", m.fold.name, m.state.epoch)
            else:
                init_head(self.model, m.seed)  # also seeds torch's global RNG (augmentation on the image path)
                sd = self.model.state_dict()
                self.stack.load_member(f, {k: sd[k] for k in names})
            if self.cfg.runtime.tensorboard:
                from torch.utils.tensorboard import SummaryWriter
                m.writer = SummaryWriter(str(m.out / "tensorboard"))

    def snapshot(self, f: int) -> dict:
        """What a fold's best epoch keeps: its head (and a trained backbone)."""
        out = self.stack.member_state(f)
        if not self.frozen:
            out.update({f"backbone.{k}": v.detach().clone() for k, v in self.model.backbone.state_dict().items()})
        return out

    def save_state(self, f: int, m: Member) -> None:
        """Resume state at an epoch boundary (with the RNG states, so a resumed run replays the same epochs);
        rate-limited because heads on cached features run many epochs per second."""
        if time.time() - m.last_save < self.cfg.runtime.save_every_s:
            return
        atomic_torch_save({
            "head": self.stack.member_state(f),
            "optimizer": self.optimizer.member_state(f) if self.optimizer is not None else None,
            "backbone": None if self.frozen else self.model.backbone.state_dict(),
            "backbone_optimizer": self.backbone_optimizer.state_dict() if self.backbone_optimizer else None,
            "rng": torch.get_rng_state(), "gen": m.gen.get_state(), "state": m.state.to_dict()}, m.out / "state.pt")
        m.last_save = time.time()

    # -- one epoch -----------------------------------------------------------------------------------------
    def train_epoch(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One epoch of every member; returns the per-member sums of each loss term and the rows seen."""
        members, data, device, bs = self.members, self.data, self.device, self.cfg.optim.batch_size
        n = len(members)
        if isinstance(self.optimizer, PlainOptimizer):
            self.optimizer.set_epoch(members[0].state.epoch)
        self.model.train()  # the backbone's trainable part (image path); frozen parts stay in eval mode
        self.stack.train()
        n_views = self.features.shape[0] if self.features is not None else 1
        perms = [torch.as_tensor(m.train_idx)[torch.randperm(len(m.train_idx), generator=m.gen)] for m in members]
        views = (torch.stack([torch.randint(n_views, (len(data),), generator=m.gen) for m in members])
                 if n_views > 1 else None)  # [F, N]: the view each image shows this epoch
        starts = (torch.stack([self.windows.train_starts(len(data), m.gen) for m in members])
                  if self.windows is not None else None)  # [F, N]: each clip's window this epoch (temporal jitter)
        steps = max(-(-len(p) // bs) for p in perms)
        index = padded(perms, steps * bs).view(n, steps, bs)
        sums: dict[str, torch.Tensor] = {}
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
            self.stack.set_batch(mask.to(device), [m.gen for m in members])
            on_pixels = self.mixing and self.cfg.optim.mix_on == "pixels"
            plan = self.draw_mix(counts, safe.shape[1], pixels=on_pixels) if on_pixels else None
            feats = self.get_features(safe, train=True, views=None if views is None else views.gather(1, safe),
                                      **({} if starts is None else {"starts": starts.gather(1, safe)}),
                                      **({"mix": plan.mix_pixels} if on_pixels else {}))
            if on_pixels:
                terms = self.mixed_loss(self.stack.forward_head(feats), safe, plan, mask.to(device))
            elif self.mixing:
                terms = self.mixed_terms(feats, safe, counts, mask.to(device))
            else:
                terms = self.objective(self.stack.forward_head(feats), targets(self.model, data, safe, device),
                                       mask=mask.to(device))
            self.optimizer.zero_grad()
            if self.backbone_optimizer is not None:
                self.backbone_optimizer.zero_grad(set_to_none=True)
            terms["loss"].sum().backward()
            self.optimizer.step(active.tolist())
            if self.backbone_optimizer is not None:
                self.backbone_optimizer.step()
            rows = mask.sum(dim=1).float()
            for k, v in terms.items():
                if v is not None:
                    sums[k] = sums.get(k, torch.zeros(n)) + torch.as_tensor(v).detach().float().cpu() * rows
            seen += rows
        return sums, seen

    @property
    def mixing(self) -> bool:
        return self.cfg.optim.mixup > 0 or self.cfg.optim.cutmix > 0

    def draw_mix(self, counts: torch.Tensor, width: int, *, frames: int = 1, pixels: bool = False) -> MixPlan:
        """Each fold's mixing for one batch, from the fold's own generator (:func:`unmask.train.mixing.draw_mix`)."""
        return draw_mix(self.cfg.optim, [m.gen for m in self.members], counts, width, frames=frames, pixels=pixels)

    def mixed_terms(self, feats: torch.Tensor, safe: torch.Tensor, counts: torch.Tensor, mask: torch.Tensor) -> dict:
        """Mixup (Zhang et al. 2018) on the heads' inputs: each fold's batch mixed with a permutation of itself,
        and every loss term mixed with the same ``lam`` (terms that do not depend on the labels come out
        unchanged). Cutmix (``optim.cutmix``), its temporal analogue for clips ``[F, B, T, ...]``: a span of
        frames taken from the permuted clip, the loss mixed by the share of the frames kept (:meth:`draw_mix`)."""
        clip = feats.dim() >= 4
        plan = self.draw_mix(counts, safe.shape[1], frames=feats.shape[2] if clip else 1)
        return self.mixed_loss(self.stack.forward_head(plan.mix_features(feats)), safe, plan, mask)

    def mixed_loss(self, out: dict, safe: torch.Tensor, plan: MixPlan, mask: torch.Tensor) -> dict:
        """The loss terms of mixed inputs: ``lam`` x the terms on the batch's own targets + ``(1 - lam)`` x those on
        the permuted batch's."""
        perm = plan.perm.to(safe.device)
        mine = self.objective(out, targets(self.model, self.data, safe, self.device), mask=mask)
        theirs = self.objective(out, targets(self.model, self.data, safe.gather(1, perm), self.device), mask=mask)
        lam = plan.lam.to(self.device)
        return {k: v if v is None or not torch.is_tensor(v) else lam * v + (1 - lam) * theirs[k]
                for k, v in mine.items()}

    # -- validation and early stopping ---------------------------------------------------------------------
    def end_epoch(self, f: int, m: Member, sums: dict[str, torch.Tensor], seen: torch.Tensor, val: dict, seconds: float, on_epoch_end: Callable[[int, dict], None] | None) -> float:
        state = m.state
        state.epoch += 1
        row = {"epoch": state.epoch, **{k: float(v[f]) / max(float(seen[f]), 1.0) for k, v in sums.items()}}
        row.update(evaluate(val, self.data, m.val_idx, self.model.tasks, "val_"))
        row["lr"] = self.optimizer.lr if self.optimizer is not None else 0.0
        row["seconds"] = seconds
        score = row.get(f"val_{self.monitor}", 0.0)
        loss = row.get(f"val_{self.monitor.rsplit('_', 1)[0]}_loss", 0.0)
        if state.best is None or score > state.best or (score == state.best and loss < state.best_loss):
            state.best, state.best_loss, state.best_epoch, state.bad_epochs = score, loss, state.epoch, 0
            state.best_state = self.snapshot(f)
        else:
            state.bad_epochs += 1
        state.log.append(row)
        self.save_state(f, m)
        if m.writer:
            for k, v in row.items():
                if k != "epoch":
                    m.writer.add_scalar(k, v, state.epoch)
        if on_epoch_end:
            on_epoch_end(state.epoch, row)
        return score

    def run(self, progress: bool, on_epoch_end: Callable[[int, dict], None] | None = None) -> list[dict]:
        self.restore_or_init()
        cfg = self.cfg
        epochs, patience = (cfg.optim.epochs if self.trainable else 0), cfg.optim.patience
        order = [m.fold.name for m in self.members]
        bar = tqdm(total=sum(max(epochs - m.state.epoch, 0) for m in self.members), unit="ep", leave=False,
                   desc=f"fold {order[0]}" if len(order) == 1 else f"{len(order)} folds", disable=not progress)
        results: dict[str, dict] = {}
        while True:
            done = [f for f, m in enumerate(self.members) if m.done(epochs, patience)]
            for f in done:
                m = self.members[f]
                bar.total -= max(epochs - m.state.epoch, 0)  # stopped early: its remaining epochs will not run
                results[m.fold.name] = finish_fold(self, m, m.state.best_state or self.snapshot(f))
            if done:
                keep = [f for f in range(len(self.members)) if f not in done]
                self.members = [self.members[f] for f in keep]
                if self.members:
                    self.stack.select(keep)
                    if self.optimizer is not None:
                        self.optimizer.select(keep, self.stack.named_parameters())
            bar.refresh()
            if not self.members:
                break
            t0 = time.time()
            sums, seen = self.train_epoch()
            val = predict_stack(self.stack, self.model, self.get_features, [m.val_idx for m in self.members],
                                cfg.optim.batch_size * 4)
            n = len(self.members)
            seconds = round((time.time() - t0) / n, 4)  # each fold's share of the stack's epoch
            for f, m in enumerate(self.members):
                score = self.end_epoch(f, m, sums, seen, val[f], seconds, on_epoch_end)
            bar.update(n)
            if n == 1:
                st = self.members[0].state
                bar.set_postfix({self.monitor: f"{score:.3f}", "best": f"{st.best:.3f}@{st.best_epoch}"})
            else:
                bar.set_postfix({"folds training": n})
        bar.close()
        return [results[name] for name in order]


def load_state(path: Path) -> dict | None:
    """A fold's resume state, loaded as checkpoints are (weights only: tensors, numbers, strings, no code);
    None when there is none. A corrupt or foreign file is an UnmaskError naming it."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign pickles
        raise UnmaskError(f"cannot resume from {path}: truncated, corrupt or not an unmask resume state "
                          f"({type(e).__name__}); delete it to start that fold again") from None
