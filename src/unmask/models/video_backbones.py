"""Video backbones: a whole clip ``[B, T, 3, H, W]`` in, tokens per time step out (path (a) of docs/ifdd.md).

Registered like the image backbones (``list_backbones()``), with the same names for the same shapes, one axis of
time added:

* ``forward_features(clip [B, T, 3, H, W])`` -> tokens ``[B, T', N, C]`` (T' time steps, N spatial positions);
* ``forward_head(tokens, pre_logits=True)`` -> ``[B, T', C]`` (spatial mean per time step), so that a clip head
  that reads frame features ``[B, T, D]`` (``frame_average``: "the plain video backbone with a linear head",
  ``temporal_transformer``) reads the video backbone's time steps, and IFDD reads its tokens as ``X [B, C, T', N]``;
* ``encodes_clips = True``: a model over it (:class:`~unmask.models.adapters.HeadModel`) takes it over, and the
  engine then passes clips unflattened.

``mvit_xs``: MViTv2-S cut to IFDD's "XS" with its neck (:mod:`unmask.models.mvit_xs`), 16 frames of 224 px -> 8 time
steps x 7x7 x 768. ``weights``: a torchvision ``mvit_v2_s`` checkpoint file (Kinetics-400), mapped onto XS
strictly; ``None``: random initialisation, announced (the release trains from random init). ``num_frames``: the
clip length it reads; ``stochastic_depth``: torchvision's drop-path rate over its blocks (not ``frames`` /
``drop_path``: those name the IFDD modules' own settings). Preprocessing: the Kinetics-400 mean/std of
torchvision's video models (0.45, 0.225), since the weights were trained with them; use
``augment.normalization=backbone``. ``tiny_mvit_xs``: the same code at 1/6 of the channels, 64 px, for tests.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from unmask.errors import UnmaskError
from unmask.models import weights as W
from unmask.models._registry import register_backbone
from unmask.models.backbones import Backbone
from unmask.models.mvit_xs import MViTXS, load_torchvision_checkpoint

KINETICS_MEAN = (0.45, 0.45, 0.45)  # torchvision's video classification preset (mvit_v2_s's weights)
KINETICS_STD = (0.225, 0.225, 0.225)


class VideoBackbone(Backbone):
    """A video model ``[B, 3, T, H, W] -> X [B, C, T', N]`` as a backbone over clips ``[B, T, 3, H, W]``."""

    encodes_clips = True

    def __init__(self, name: str, model: MViTXS, *, frames: int, time_steps: int, **kwargs: Any):
        super().__init__(name, model, **kwargs)
        self.frames, self.time_steps = int(frames), int(time_steps)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, 3, H, W] -> tokens [B, T', N, C]
        if x.dim() != 5 or x.shape[1] != self.frames:
            raise UnmaskError(f"backbone {self.name} reads clips of {self.frames} frames [B, {self.frames}, 3, H, W] "
                              f"(backbone_args.num_frames); got {tuple(x.shape)}: set data.window={self.frames} or "
                              f"prepare --frames uniform:{self.frames}")
        return self.model(x.transpose(1, 2)).permute(0, 2, 3, 1)

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:  # -> [B, T', C]
        return tokens.mean(-2)

    def probe(self) -> torch.Tensor:
        """A blank input of the shape this backbone reads (one clip)."""
        return torch.zeros(1, self.frames, *self.data_config["input_size"])


def _build_xs(name: str, weights: str | os.PathLike | None, mode: str | int, *, img_size: int, num_frames: int, width: float, stochastic_depth: float,
              file_hint: str) -> VideoBackbone:
    frames = num_frames
    if frames % 2:
        raise UnmaskError(f"backbone {name}: num_frames must be even (the patch embedding has a temporal stride of 2), "
                          f"got {frames}")
    spec = W.parse_weights(weights)
    xs = MViTXS(size=img_size, frames=frames, width=width, drop_path=stochastic_depth)
    if spec.kind == "tag":
        raise UnmaskError(f"backbone {name} has no pretrained tags; pass a torchvision mvit_v2_s checkpoint file "
                          f"({file_hint}) or weights=None")
    if spec.kind == "file":
        xs.load_s_checkpoint(load_torchvision_checkpoint(spec.path), what=str(spec.path))
    else:
        W.announce_random_init(name)
    m = xs.mvit
    return VideoBackbone(name, xs, frames=frames, time_steps=frames // 2, num_features=xs.channels,
                         data_config={"input_size": (3, img_size, img_size), "mean": KINETICS_MEAN,
                                      "std": KINETICS_STD, "interpolation": "bilinear"},
                         build_args={"img_size": img_size, "num_frames": frames,
                                     "stochastic_depth": stochastic_depth}, mode=mode,
                         blocks=list(m.blocks), tail=[m.norm, xs.down, xs.fuse])  # type: ignore[arg-type]


@register_backbone
def mvit_xs(weights: str | os.PathLike | None = None, mode: str | int = "frozen", img_size: int = 224, num_frames: int = 16,
            stochastic_depth: float = 0.2) -> Backbone:
    """IFDD's video backbone: MViTv2-S cut to 10 blocks with the IFDD neck; ``[B, 16, 3, 224, 224]`` -> tokens
    ``[B, 8, 49, 768]``. ``weights``: a torchvision ``mvit_v2_s`` file (mapped), or None (random init)."""
    return _build_xs("mvit_xs", weights, mode, img_size=img_size, num_frames=num_frames, width=1.0,
                     stochastic_depth=stochastic_depth,
                     file_hint="mvit_v2_s-ae3be167.pth")


@register_backbone
def tiny_mvit_xs(weights: str | os.PathLike | None = None, mode: str | int = "frozen", img_size: int = 64, num_frames: int = 8,
                 stochastic_depth: float = 0.0) -> Backbone:
    """``mvit_xs`` at 1/6 of the channels (16-128), 64 px, 8 frames: tokens ``[B, 4, 4, 128]`` (tests, CPU)."""
    return _build_xs("tiny_mvit_xs", weights, mode, img_size=img_size, num_frames=num_frames, width=1 / 6,
                     stochastic_depth=stochastic_depth, file_hint="a tiny mvit_v2_s state dict (tests/test_mvit_xs.py)")
