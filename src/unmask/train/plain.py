"""The general training path: any ``nn.Module`` head, one fold at a time, with a standard torch optimiser.

The engine's loop speaks to "a stack of heads" (:mod:`unmask.train.stacked`); :class:`PlainHead` and
:class:`PlainOptimizer` give one unstacked model that interface (a stack of one, ``F = 1``), so the loop,
validation, early stopping and resume are the same code on both paths. The plain path is what any model gets;
the stacked path is a speed-up the engine chooses when a head has a stacked form (:func:`stackable`) and the
optimiser is plain Adam without schedule or clipping.

Optimisers: ``adam``, ``adamw``, ``sgd`` (torch.optim); schedules per epoch: linear warm-up over
``warmup_epochs``, then ``cosine`` (to 0 at ``epochs``) or ``step`` (x ``gamma`` every ``step_size`` epochs);
``grad_clip``: max global gradient norm.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.train.stacked import StackedHead

if TYPE_CHECKING:
    from unmask.config import OptimConfig


def stackable(model: nn.Module) -> str | None:
    """None when the model's head has a stacked form, else the reason it has not."""
    try:
        StackedHead(model, 1)
    except UnmaskError as e:
        return str(e)
    return None


def stacked_optimiser(optim_cfg: OptimConfig) -> str | None:
    """None when the optimiser settings are the stacked path's (Adam, no schedule, no clipping), else why not."""
    if optim_cfg.name != "adam":
        return f"optim.name={optim_cfg.name}"
    if optim_cfg.schedule != "none" or optim_cfg.warmup_epochs:
        return "a learning-rate schedule"
    if optim_cfg.grad_clip:
        return "gradient clipping"
    return None


class PlainHead(nn.Module):
    """``model`` seen as a stack of one: ``forward_head([1, B, ...])`` -> outputs with a leading axis of 1."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.n = 1
        object.__setattr__(self, "model", model)  # not a submodule: the run owns it

    def set_batch(self, mask: torch.Tensor, generators: Sequence[torch.Generator]) -> None:
        if not bool(mask.all()):
            raise ValueError("the plain path trains one fold at a time, without padding")

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:  # [1, B, ...]
        out = self.model.forward_head(features[0])
        return {k: v[None] if torch.is_tensor(v) and v.dim() else v for k, v in out.items()}

    def train(self, mode: bool = True) -> PlainHead:
        for name, module in self.model.named_children():
            if name != "backbone":
                module.train(mode)
        return self

    def eval(self) -> PlainHead:
        return self.train(False)

    def load_member(self, f: int, state: dict) -> None:
        self.model.load_state_dict({**self.model.state_dict(), **state})

    def member_state(self, f: int) -> dict:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items() if not k.startswith("backbone.")}

    def select(self, keep: Sequence[int]) -> None:
        pass


def build_torch_optimizer(params: Iterable[Any], optim_cfg: OptimConfig) -> torch.optim.Optimizer:
    if optim_cfg.name == "sgd":
        return torch.optim.SGD(params, lr=optim_cfg.lr, momentum=optim_cfg.momentum,
                               weight_decay=optim_cfg.weight_decay)
    cls = torch.optim.AdamW if optim_cfg.name == "adamw" else torch.optim.Adam
    return cls(params, lr=optim_cfg.lr, weight_decay=optim_cfg.weight_decay)


def lr_factor(epoch: int, optim_cfg: OptimConfig) -> float:
    """The learning rate's factor during ``epoch`` (0-based): warm-up, then the schedule."""
    warm = optim_cfg.warmup_epochs
    if epoch < warm:
        return (epoch + 1) / (warm + 1)
    if optim_cfg.schedule == "cosine":
        span = max(optim_cfg.epochs - warm, 1)
        return 0.5 * (1 + math.cos(math.pi * min(epoch - warm, span) / span))
    if optim_cfg.schedule == "step":
        return optim_cfg.gamma ** ((epoch - warm) // optim_cfg.step_size)
    return 1.0


class PlainOptimizer:
    """A torch optimiser over every trainable parameter of ``model`` (head and a training backbone), with the
    stacked optimiser's interface; ``set_epoch`` applies the schedule, ``step`` clips gradients first."""

    def __init__(self, model: nn.Module, optim_cfg: OptimConfig):
        self.cfg = optim_cfg
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = build_torch_optimizer(self.params, optim_cfg)

    @property
    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def set_epoch(self, epoch: int) -> None:
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.lr * lr_factor(epoch, self.cfg)

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def step(self, active: Sequence[bool]) -> None:
        if self.cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()

    def member_state(self, f: int) -> dict:
        return self.opt.state_dict()

    def load_member(self, f: int, state: dict) -> None:
        self.opt.load_state_dict(state)

    def select(self, keep: Sequence[int], params: Iterable[Any]) -> None:
        pass
