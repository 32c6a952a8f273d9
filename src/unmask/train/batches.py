"""Index batches of a stack of folds ``[F, B]`` -> what the heads see: features (cached, or images through the
backbone on the image path, with clip windows and pixel mixing), the targets, and prediction over index rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from unmask.data.datasets import FrameData
    from unmask.data.transforms import Preprocess
    from unmask.train.windows import Windows


class Features:
    """Backbone features of index batches ``[F, B]`` -> ``[F, B, D]`` (``[F, B, T, D]`` for clips): from the cache
    (one view per image per epoch) or from images through the backbone (the image path, F = 1)."""

    def __init__(self, model: Any, data: FrameData, features: torch.Tensor | None, preprocess: Preprocess, device: torch.device, amp: bool, windows: Windows | None = None):
        self.model, self.data, self.features = model, data, features
        self.preprocess, self.device, self.amp = preprocess, device, amp
        self.windows = windows  # unmask.train.windows.Windows: T-frame windows of the clips (None: whole clips)

    def __call__(self, idx: torch.Tensor, *, train: bool, views: torch.Tensor | None = None,
                 starts: torch.Tensor | None = None, mix: Any = None) -> torch.Tensor:
        """``starts [F, B]``: each clip's window start (with :attr:`windows`); None: the whole clip. ``mix``: a
        function of the preprocessed images ``[B, ...]`` applied before the backbone (pixel mixup / cutmix; the
        image path only)."""
        idx = idx.to(self.device)
        frames = None if starts is None else self.windows.frame_index(starts.to(self.device))  # type: ignore[union-attr]  # [F, B, T]
        if self.features is not None:
            v = views.to(self.device) if views is not None else None
            if frames is None:
                return self.features[v if v is not None else 0, idx]
            v = v if v is not None else torch.zeros_like(idx)
            return self.features[v[..., None], idx[..., None], frames]  # [F, B, T, ...]: the window's cached frames
        if idx.shape[0] != 1:
            raise ValueError("the image path trains one fold at a time")
        images = self.data.images[idx[0].cpu()]
        if frames is not None:  # [B, K, 3, H, W] -> the window [B, T, 3, H, W]
            images = images[torch.arange(images.shape[0])[:, None], frames[0].cpu()]
        x = self.preprocess(images, train=train).to(self.device)
        if mix is not None:
            x = mix(x)
        backbone = self.model.backbone
        encode = backbone.forward_features if getattr(self.model, "uses_tokens", False) else backbone
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            if x.dim() == 5 and not getattr(self.model, "encodes_clips", False):
                # clip: [B, T, 3, H, W] -> frame features [B, T, D] (tokens [B, T, N, C])
                b, t = x.shape[:2]
                f = encode(x.flatten(0, 1))
                f = f.view(b, t, *f.shape[1:])
            else:
                f = encode(x)
        return f.float()[None]


def targets(model: Any, data: FrameData, idx: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    """The labels of the model's tasks for index rows ``[F, B]``: ``[F, B]`` or ``[F, B, L]`` each."""
    return {t.name: data.labels[t.name][idx].to(device) for t in model.tasks}


def padded(rows: list[np.ndarray | torch.Tensor], width: int | None = None) -> torch.Tensor:
    """Index rows of different lengths -> ``[F, width]`` padded with -1 (valid entries first in every row)."""
    width = width or max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), -1, dtype=torch.long)
    for f, r in enumerate(rows):
        out[f, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


@torch.no_grad()
def predict_stack(stack: Any, model: Any, get_features: Callable[..., Any], rows: list[np.ndarray], batch_size: int) -> list[dict[str, np.ndarray]]:
    """Probabilities per member and task for index rows (eval mode, view 0, no augmentation)."""
    stack.eval()
    model.eval()
    index = padded(rows)  # type: ignore[arg-type]  # list is invariant: ndarrays are accepted
    windows = getattr(get_features, "windows", None)
    chunks: dict[str, list] = {}
    for start in range(0, index.shape[1], batch_size):
        idx = index[:, start:start + batch_size]
        stack.set_batch(idx >= 0, ())
        if windows is None:
            out = stack.forward_head(get_features(idx.clamp_min(0), train=False))
            for task in model.tasks:
                chunks.setdefault(task.name, []).append(task.probabilities(out[f"{task.name}_logits"]).cpu())
            continue
        # clip windows: each clip's class probabilities averaged over its test windows
        starts = windows.eval_starts(idx.clamp_min(0))
        sums: dict[str, torch.Tensor] = {}
        for s in starts:
            out = stack.forward_head(get_features(idx.clamp_min(0), train=False, starts=s))
            for task in model.tasks:
                p = task.probabilities(out[f"{task.name}_logits"]).cpu()
                sums[task.name] = sums[task.name] + p if task.name in sums else p
        for task in model.tasks:
            chunks.setdefault(task.name, []).append(sums[task.name] / len(starts))
    probs = {t: torch.cat(v, dim=1).numpy() for t, v in chunks.items()}  # [F, width, C]
    return [{t: p[f, :len(r)] for t, p in probs.items()} for f, r in enumerate(rows)]
