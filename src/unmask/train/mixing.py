"""Mixup and cutmix for one batch of every fold of a stack (``optim.mixup``, ``optim.cutmix``, ``optim.mix_switch``,
``optim.mix_on``): the draw from each fold's own generator and the mixing of features or pixels.

Mixup (Zhang et al. 2018) mixes each fold's batch with a permutation of itself, ``lam ~ Beta(a, a)``; cutmix
(Yun et al. 2019) pastes part of the permuted sample: a box of ``1 - lam`` of the image area on pixels (the same box
in every frame of a clip), or on the heads' inputs its temporal analogue, a span of ``round((1 - lam) T)`` frames.
The engine mixes every loss term with the share of the sample's own content kept (``MixPlan.lam``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from unmask.errors import UnmaskError

if TYPE_CHECKING:
    from unmask.config import OptimConfig


def draw_mix(optim: OptimConfig, gens: list[torch.Generator], counts: torch.Tensor, width: int, *, frames: int = 1,
             pixels: bool = False) -> MixPlan:
    """Each fold's mixing for one batch, drawn from the fold's own generator: mixup, ``lam ~ Beta(a, a)``, or
    (``optim.cutmix``; with both on, with probability ``optim.mix_switch``) cutmix, ``Beta(c, c)``: a span of
    ``round((1 - lam) T)`` of the ``frames`` (the heads' inputs), or with ``pixels`` a box of ``1 - lam`` of
    the image area (the same box in every frame of a clip; lam then the share of the area kept)."""
    a, c_alpha, switch = optim.mixup, optim.cutmix, optim.mix_switch
    folds = []
    for gen, c in zip(gens, counts.tolist()):
        seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
        rng = np.random.default_rng(seed)
        if c_alpha > 0 and (a <= 0 or rng.random() < switch):
            cut = 1 - float(rng.beta(c_alpha, c_alpha))  # the share to cut
            if pixels:
                fy, fx = float(rng.random()), float(rng.random())  # the box's centre, as shares of H and W
                fold = ("box", (cut, fy, fx))
            else:
                if frames < 2:
                    raise UnmaskError("optim.cutmix mixes spans of frames: it needs clips (data.paradigm=clip)")
                span = int(round(cut * frames))
                start = int(rng.integers(0, frames - span + 1))
                keep = torch.ones(frames)
                keep[start:start + span] = 0
                fold = ("span", keep)
        else:
            fold = ("mixup", float(rng.beta(a, a)))
        perm = torch.arange(width)
        perm[:c] = torch.randperm(c, generator=gen) if c else perm[:c]
        folds.append((fold, perm))
    return MixPlan(folds)


class MixPlan:
    """One batch's mixup / cutmix per fold (drawn by :func:`draw_mix`): ``(kind, value)`` and the
    permutation of the batch that supplies the other sample. ``lam``: the weight of each fold's own sample."""

    def __init__(self, folds: list):
        self.folds = folds
        self.perm = torch.stack([perm for _, perm in folds])  # [F, B]
        self._box_lams: list[float] | None = None

    @property
    def lam(self) -> torch.Tensor:
        lams = []
        for k, ((kind, value), _) in enumerate(self.folds):
            if kind == "mixup":
                lams.append(value)
            elif kind == "span":
                lams.append(float(value.mean()))
            else:  # box: the share of the area kept, known once the box met the image's size
                if self._box_lams is None:
                    raise RuntimeError("a pixel cutmix's lambda is known after mix_pixels")
                lams.append(self._box_lams[k])
        return torch.tensor(lams)

    def mix_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Heads' inputs ``[F, B, ...]`` (clips ``[F, B, T, ...]``) mixed: mixup, or a span of frames swapped."""
        clip = feats.dim() >= 4
        keep = []
        for (kind, value), _ in self.folds:
            if kind == "box":
                raise UnmaskError("a pixel cutmix cannot mix features")
            keep.append(value.to(feats.dtype) if kind == "span" else torch.full((feats.shape[2] if clip else 1,), value))
        keep = torch.stack(keep).to(feats.device, feats.dtype)  # [F, T]
        keep = keep.view(len(keep), 1, keep.shape[1], *(1,) * (feats.dim() - 3)) if clip else keep.view(-1, 1, 1)
        perm = self.perm.to(feats.device)
        other = feats.gather(1, perm.view(*perm.shape, *(1,) * (feats.dim() - 2)).expand_as(feats))
        return keep * feats + (1 - keep) * other

    def mix_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed images ``[B, 3, H, W]`` or clips ``[B, T, 3, H, W]`` of the one fold on the image path,
        mixed: mixup of whole images, or a box pasted from the permuted sample (every frame the same box)."""
        (kind, value), perm = self.folds[0]
        other = x[perm.to(x.device)]
        if kind == "mixup":
            self._box_lams = [value]
            return value * x + (1 - value) * other
        h, w = x.shape[-2:]
        cut, fy, fx = value
        bh, bw = round(h * cut ** 0.5), round(w * cut ** 0.5)
        cy, cx = int(fy * h), int(fx * w)
        y0, y1 = max(cy - bh // 2, 0), min(cy - bh // 2 + bh, h)
        x0, x1 = max(cx - bw // 2, 0), min(cx - bw // 2 + bw, w)
        out = x.clone()
        out[..., y0:y1, x0:x1] = other[..., y0:y1, x0:x1]
        self._box_lams = [1 - (y1 - y0) * (x1 - x0) / (h * w)]
        return out
