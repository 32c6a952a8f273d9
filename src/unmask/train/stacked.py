"""The heads of several folds trained at once, as one stack of independent members.

A LOSO run trains 22 small heads on the same cached features. One fold at a time pays Python and dispatch
overhead per step, and each op is too small to keep the cores busy; a stack runs every op once for all folds,
on ``[F, B, ...]`` tensors, with batched matrix products. Members never interact: each has its own parameters,
BatchNorm statistics, optimiser state, step count and random generator, so a fold's result does not depend on
which folds share its stack (tested: a fold alone == the same fold in a stack, up to float tolerance).

:func:`stack_head` turns a model's head (everything but the backbone) into a stack by module surgery:
``nn.Linear`` -> :class:`StackedLinear` (weights ``[F, in, out]``), ``nn.BatchNorm1d`` ->
:class:`StackedBatchNorm1d` (statistics over each member's valid rows), ``nn.Dropout`` -> :class:`StackedDropout`
(masks drawn from each member's generator); element-wise modules are kept. The model's own ``forward_head``
then runs on ``[F, B, D]`` features unchanged. A head with another parameterised module is refused by name.

Ragged batches (members whose training sets differ in size) are padded; ``set_batch(mask)`` tells the stack
which rows count. A member with no valid rows in a step is left untouched (no statistics update, no optimiser
step), exactly as if that step did not exist for it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from unmask.errors import UnmaskError
from unmask.runtime import seed_everything

_ELEMENTWISE = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Identity, nn.Flatten)


class _Batch:
    """What the current step's members look like: ``mask [F, B]`` (bool), ``full`` (all of it True),
    ``generators`` (one per member)."""

    def __init__(self):
        self.mask: torch.Tensor | None = None
        self.full = False  # every row of the mask valid (no padding, no inactive member)
        self.generators: Sequence[torch.Generator] = ()


class StackedLinear(nn.Module):
    """``F`` independent ``nn.Linear``: ``[F, B, in] -> [F, B, out]``; weight ``[F, in, out]`` (transposed, so
    the weight gradient comes out contiguous)."""

    def __init__(self, n: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.zeros(n, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(n, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias[:, None], x, self.weight)

    def load_member(self, f: int, state: dict) -> None:
        self.weight.data[f] = state["weight"].t()
        if self.bias is not None:
            self.bias.data[f] = state["bias"]

    def member_state(self, f: int) -> dict:
        out = {"weight": self.weight.data[f].t().clone()}
        if self.bias is not None:
            out["bias"] = self.bias.data[f].clone()
        return out


class StackedBatchNorm1d(nn.Module):
    """``F`` independent ``nn.BatchNorm1d`` on ``[F, B, C]``: training mode normalises each member with the mean and
    biased variance of its valid rows and updates its running statistics (unbiased variance, like torch);
    members without valid rows keep theirs."""

    def __init__(self, n: int, bn: nn.BatchNorm1d, batch: _Batch):
        super().__init__()
        if bn.momentum is None or not bn.track_running_stats:
            raise UnmaskError("stacked training supports BatchNorm1d with a momentum and running statistics")
        c = bn.num_features
        self.eps, self.momentum, self.affine, self._batch = bn.eps, bn.momentum, bn.affine, batch
        self.weight = nn.Parameter(torch.ones(n, c)) if bn.affine else None
        self.bias = nn.Parameter(torch.zeros(n, c)) if bn.affine else None
        self.register_buffer("running_mean", torch.zeros(n, c))
        self.register_buffer("running_var", torch.ones(n, c))
        self.register_buffer("num_batches_tracked", torch.zeros(n, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [F, B, C]
        x = x.float()  # statistics in float32, also under bf16 autocast (as torch's batch_norm)
        if self.training:
            m = self._batch.mask.to(x.dtype)[:, :, None]  # [F, B, 1]
            n = m.sum(dim=1, keepdim=True)  # [F, 1, 1]
            if self._batch.full:  # every row valid: x * 1 == x, so the products by the mask can be skipped
                mean = x.sum(dim=1, keepdim=True) / n.clamp_min(1)
                var = ((x - mean) ** 2).sum(dim=1, keepdim=True) / n.clamp_min(1)
            else:
                mean = (x * m).sum(dim=1, keepdim=True) / n.clamp_min(1)
                var = ((x - mean) ** 2 * m).sum(dim=1, keepdim=True) / n.clamp_min(1)
            with torch.no_grad():
                active = n[:, 0] > 0  # [F, 1]
                unbiased = var[:, 0] * n[:, 0] / (n[:, 0] - 1).clamp_min(1)
                self.running_mean.copy_(torch.where(active, torch.lerp(self.running_mean, mean[:, 0], self.momentum),
                                                    self.running_mean))
                self.running_var.copy_(torch.where(active, torch.lerp(self.running_var, unbiased, self.momentum),
                                                   self.running_var))
                self.num_batches_tracked += active[:, 0].long()
            y = (x - mean) * torch.rsqrt(var + self.eps)
        else:
            y = (x - self.running_mean[:, None]) * torch.rsqrt(self.running_var[:, None] + self.eps)
        if self.affine:
            y = torch.addcmul(self.bias[:, None], y, self.weight[:, None])
        return y

    def load_member(self, f: int, state: dict) -> None:
        for k in ("running_mean", "running_var", "num_batches_tracked") + (("weight", "bias") if self.affine else ()):
            getattr(self, k).data[f] = state[k]

    def member_state(self, f: int) -> dict:
        keys = (("weight", "bias") if self.affine else ()) + ("running_mean", "running_var", "num_batches_tracked")
        return {k: getattr(self, k).data[f].clone() for k in keys}


class StackedDropout(nn.Module):
    """Dropout whose mask for member f comes from member f's generator, drawn over its valid rows only (so the
    draws a member sees do not depend on the other members or on padding)."""

    def __init__(self, p: float, batch: _Batch):
        super().__init__()
        self.p, self._batch = float(p), batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [F, B, C]
        if not self.training or self.p == 0:
            return x
        # each member's uniforms drawn straight into its rows of one buffer (padding rows stay 0: dropped), then
        # one comparison and one product for the whole stack; the scale is folded into the 0/1 mask, which gives
        # the same floats as x * keep * scale (x * 1 * s == x * s, x * 0 == x * (0 * s))
        u = torch.zeros(x.shape, dtype=torch.float32)
        counts = self._batch.mask.sum(dim=1).tolist()
        for f, (g, b) in enumerate(zip(self._batch.generators, counts)):
            if b:
                # drawn on the CPU (members' generators live there), so CPU and CUDA runs draw the same masks
                torch.rand(b, x.shape[2], generator=g, out=u[f, :b])
        keep = (u >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))
        return x * keep.to(x.device)


_STACKED = (StackedLinear, StackedBatchNorm1d)


def head_names(model: nn.Module) -> list[str]:
    """Names of the model's head parameters and buffers (its state-dict keys outside ``backbone.``)."""
    return [k for k in model.state_dict() if not k.startswith("backbone.")]


def init_head(model: nn.Module, seed: int) -> None:
    """Draw the head's initial weights from ``seed``: every head module's ``reset_parameters`` in registration
    order, the order in which constructing the head would have drawn them (the backbone is not touched)."""
    seed_everything(seed)
    for name, module in model.named_modules():
        if name and not name.startswith("backbone") and hasattr(module, "reset_parameters"):
            module.reset_parameters()


class StackedHead(nn.Module):
    """``n`` copies of ``model``'s head as one module: ``forward_head(features [F, B, D])`` returns the model's
    outputs with a leading member axis. The backbone is shared by reference, never copied."""

    def __init__(self, model: nn.Module, n: int):
        super().__init__()
        self.n = n
        self.batch = _Batch()
        self.head = copy.deepcopy(model, memo={id(model.backbone): model.backbone})
        self._stack_children(self.head, prefix="")
        # the stacked copy must not own (or save, or train) the shared backbone
        object.__setattr__(self, "_backbone", self.head._modules.pop("backbone"))
        self.head.__dict__["backbone"] = self._backbone
        self._members = {name: m for name, m in self.head.named_modules() if isinstance(m, _STACKED)}

    def _stack_children(self, module: nn.Module, prefix: str) -> None:
        for name, child in list(module._modules.items()):
            full = f"{prefix}{name}"
            if full == "backbone" or child is None:
                continue
            if isinstance(child, nn.Linear):
                new = StackedLinear(self.n, child.in_features, child.out_features, bias=child.bias is not None)
            elif isinstance(child, nn.BatchNorm1d):
                new = StackedBatchNorm1d(self.n, child, self.batch)
            elif isinstance(child, nn.Dropout):
                new = StackedDropout(child.p, self.batch)
            elif isinstance(child, _ELEMENTWISE):
                continue
            elif any(True for _ in child.parameters(recurse=False)) or any(True for _ in child.buffers(recurse=False)):
                raise UnmaskError(f"cannot train heads of several folds at once: module {full!r} "
                                  f"({type(child).__name__}) has no stacked form; supported: Linear, BatchNorm1d, "
                                  f"Dropout and element-wise activations")
            else:
                self._stack_children(child, prefix=f"{full}.")
                continue
            module._modules[name] = new
        for name, _ in module.named_parameters(recurse=False):
            raise UnmaskError(f"cannot stack the head parameter {prefix}{name}: it belongs to no Linear/BatchNorm1d")

    def set_batch(self, mask: torch.Tensor, generators: Sequence[torch.Generator]) -> None:
        self.batch.mask, self.batch.generators = mask, generators
        self.batch.full = bool(mask.all())

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:  # [F, B, D]
        return self.head.forward_head(features)

    def load_member(self, f: int, state: dict) -> None:
        """Put a head state (keys as in ``model.state_dict()``, outside ``backbone.``) into slot ``f``."""
        for name, module in self._members.items():
            module.load_member(f, {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")})

    def member_state(self, f: int) -> dict:
        """Slot ``f`` as a head state with the model's keys and layouts (loadable into the model)."""
        return {f"{name}.{k}": v for name, module in self._members.items()
                for k, v in module.member_state(f).items()}

    def select(self, keep: Sequence[int]) -> None:
        """Keep only the members ``keep`` (in that order): parameters and buffers are sliced in place."""
        idx = torch.as_tensor(list(keep), dtype=torch.long)
        for module in self._members.values():
            for k, p in list(module.named_parameters(recurse=False)):  # new leaves: autograd knows their shapes
                setattr(module, k, nn.Parameter(p.data[idx.to(p.device)].contiguous()))
            for k, b in list(module.named_buffers(recurse=False)):
                setattr(module, k, b[idx.to(b.device)].contiguous())
        self.n = len(idx)


class StackedAdam:
    """Adam (torch's, L2 weight decay, its fused kernel for float tensors on the CPU and CUDA) over a
    :class:`StackedHead`, with a step count per member; ``step(active)`` updates only the members that had a batch."""

    def __init__(self, params: Iterable[tuple[str, nn.Parameter]], *, lr: float, weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = dict(params)
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.state = {k: {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
                      for k, p in self.params.items()}
        n = next(iter(self.params.values())).shape[0] if self.params else 0
        device = next(iter(self.params.values())).device if self.params else "cpu"
        self.steps = torch.zeros(n, len(self.params), device=device)  # [F, P] float: the fused kernel's format
        self._views: dict = {}

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    def step(self, active: Sequence[bool]) -> None:
        key = tuple(bool(a) for a in active)
        if key not in self._views:  # per-member views of weights and moments (fixed until select)
            on = [f for f, a in enumerate(key) if a]
            self._views = {key: (
                [(k, f) for f in on for k in self.params],
                [p.data[f] for f in on for p in self.params.values()],
                [self.state[k]["exp_avg"][f] for f in on for k in self.params],
                [self.state[k]["exp_avg_sq"][f] for f in on for k in self.params],
                [self.steps[f, j] for f in on for j in range(len(self.params))])}
        slots, ps, m1, m2, steps = self._views[key]
        grads = {k: p.grad for k, p in self.params.items()}
        if any(g is None for g in grads.values()):  # a parameter the loss did not reach (e.g. beta = 0): no step
            use = [i for i, (k, _) in enumerate(slots) if grads[k] is not None]
            slots, ps, m1, m2, steps = ([x[i] for i in use] for x in (slots, ps, m1, m2, steps))
        gs = [grads[k][f] for k, f in slots]
        if ps:
            # what torch.optim.adam's fused path runs, minus its per-tensor step increment (one tiny op for each
            # of F x P step counts): the members' counts are one [F, P] tensor, incremented in one op
            on = torch.tensor(key, device=self.steps.device)
            counted = torch.tensor([grads[k] is not None for k in self.params], device=self.steps.device)
            self.steps += (on[:, None] & counted[None]).to(self.steps.dtype)
            torch._fused_adam_(ps, gs, m1, m2, [], steps, amsgrad=False, lr=self.lr, beta1=self.betas[0],
                               beta2=self.betas[1], weight_decay=self.weight_decay, eps=self.eps, maximize=False,
                               grad_scale=None, found_inf=None)

    def member_state(self, f: int) -> dict:
        return {"steps": self.steps[f].clone(),
                **{f"{k}.{s}": v[f].clone() for k, st in self.state.items() for s, v in st.items()}}

    def load_member(self, f: int, state: dict) -> None:
        self.steps[f] = state["steps"]
        for k, st in self.state.items():
            for s, v in st.items():
                v[f] = state[f"{k}.{s}"]

    def select(self, keep: Sequence[int], params: Iterable[tuple[str, nn.Parameter]]) -> None:
        """Keep the members ``keep``; ``params``: the stack's parameters after its own ``select``."""
        self.params = dict(params)
        self._views = {}
        idx = torch.as_tensor(list(keep), dtype=torch.long, device=self.steps.device)
        self.steps = self.steps[idx].contiguous()
        for st in self.state.values():
            for s in st:
                st[s] = st[s][idx].contiguous()
