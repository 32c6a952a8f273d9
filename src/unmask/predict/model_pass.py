"""The model pass: face crops -> each task's probabilities and the backbone features, in batches.

The crops are resized and normalised as training resized and normalised them (the checkpoint's
``preprocess``); a clip model reads ``[N, T, H, W, 3]`` crops (T frames per input), a frame model ``[N, H, W, 3]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from unmask.errors import UnmaskError
from unmask.tasks import Task


def clip_frames_of(model: Any, prep: dict[str, Any]) -> int:
    """T, the frames per model input of a clip model (the prepared set's clip frames, 8 when unrecorded); 0 for a
    model of single frames. The model declares which it is (``clip_input``), as it was built for its paradigm."""
    return int(prep.get("clip_frames") or 8) if getattr(model, "clip_input", False) else 0


if TYPE_CHECKING:
    from unmask.trust import Trust


class ModelPass:
    """A model with its training preprocessing, on ``device``, with a bf16 copy of the backbone when asked."""

    def __init__(self, model: Any, prep: dict[str, Any], *, device: torch.device, batch_size: int = 32,
                 precision: str = "fp32"):
        from unmask.data.transforms import Preprocess
        from unmask.models.inference import cast_backbone

        self.model: Any = model  # an unmask model (nn.Module): tasks, uses_tokens, forward_head
        self.device = device
        self.tasks: tuple[Task, ...] = tuple(model.tasks)
        self.encodes_clips = bool(getattr(model, "encodes_clips", False))
        self.clip_frames = clip_frames_of(model, prep)  # a clip model reads T frames per example
        self.input_size = int(prep["input_size"][-1])
        self.normalize = Preprocess(prep["mean"], prep["std"])
        self.batch_size, self.precision = batch_size, precision
        # bf16: a bf16 copy of the backbone under autocast, as feature extraction does (autocast over fp32
        # weights takes open_clip's attention off its fused path and was slower than fp32 on a CPU)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.backbone: Any = cast_backbone(model.backbone, dtype, device).eval()
        self.trust: Trust | None = None  # calibration and the unlike-training score (set by the Predictor)

    @torch.no_grad()
    def __call__(self, crops: np.ndarray | Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Face crops (uint8 ``[N, H, W, 3]``, as :func:`~unmask.data.faces.crop_face` makes them; a clip model:
        ``[N, T, H, W, 3]``) -> ``{<task>: [N, C] probabilities, ..., "features": [N, D]}`` (backbone features,
        averaged over a clip's frames)."""
        from unmask.data.transforms import resize_uint8

        crops = np.asarray(crops)
        want = 5 if self.clip_frames else 4
        if crops.ndim != want or crops.shape[-1] != 3 or crops.dtype != np.uint8:
            shape = "[N, T, H, W, 3]" if self.clip_frames else "[N, H, W, 3]"
            raise UnmaskError(f"expected uint8 crops {shape}, got {crops.dtype} {crops.shape}")
        out: dict[str, list] = {}
        for start in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(crops[start:start + self.batch_size])
            x = x.permute(*range(x.dim() - 3), -1, -3, -2)  # [B, (T,) 3, H, W]
            x = self.normalize(resize_uint8(x, self.input_size), train=False).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                encode = self.backbone.forward_features if self.model.uses_tokens else self.backbone
                if self.encodes_clips:  # the backbone reads whole clips [B, T, 3, H, W] -> [B, D]
                    f = encode(x).float()
                else:
                    f = encode(x.flatten(0, 1) if self.clip_frames else x)  # [B(*T), D] (or tokens [B(*T), N, C])
                    f = f.float().view(*x.shape[:-3], *f.shape[1:])  # [B, (T,) D]
                o = self.model.forward_head(f)
                if self.model.uses_tokens and not self.encodes_clips:  # apex search compares pooled embeddings
                    f = self.backbone.forward_head(f.flatten(0, -3)).view(*x.shape[:-3], -1)
                if self.encodes_clips and f.dim() > 2:  # a video backbone's tokens per time step: one vector per clip
                    f = f.flatten(1, -2).mean(1)
            for task in self.tasks:
                logits = o[f"{task.name}_logits"]
                probs = self.trust.probabilities(task, logits) if self.trust else task.probabilities(logits)
                out.setdefault(task.name, []).append(probs.cpu())
            out.setdefault("features", []).append((f.mean(1) if self.clip_frames and not self.encodes_clips else f).cpu())
        if not out:
            return {"features": np.zeros((0, 0), np.float32), "ood": np.zeros(0)}
        res = {k: torch.cat(v).numpy() for k, v in out.items()}
        if self.trust is not None:
            res["ood"] = self.trust.scores(res["features"])  # [N] "unlike the training faces" scores
        return res
