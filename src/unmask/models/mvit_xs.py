"""IFDD's video backbone (path (a) of docs/ifdd.md): MViTv2-S cut to 10 blocks ("XS"), on torchvision's MViT.

torchvision's ``mvit_v2_s`` has 16 blocks in four stages (depths 1, 2, 11, 2; channels 96, 192, 384, 768). XS
keeps stage depths 1, 2, 5, 2: blocks 0-7 of S, then S's blocks 14-15 (the 384 -> 768 transition and the last
block); S's blocks 8-13 are dropped. :func:`xs_state_from_s` maps a torchvision ``mvit_v2_s`` state dict (the
Kinetics-400 file ``mvit_v2_s-ae3be167.pth`` is one) onto XS that way; the classification head is dropped.

The IFDD neck: the last 384-channel block's output (T'=8, 14x14) goes through a dilated stride-2 3x3 conv to
7x7, is concatenated with the last block's 768-channel output (7x7), and a 1x1 conv gives
``X [B, 768, T'=8, 49]``, the map ISSM and LADM read (:class:`unmask.models.ifdd.IFDD`).

Input: ``[B, 3, T, H, W]`` scaled to [0, 1] (the release uses no mean/std); a 16-frame 224 px clip gives T'=8
(the patch embedding has a temporal stride of 2). ``width`` scales every channel count and ``size``/``frames``
the input, for the tiny test version (``xs_config(width=1/6, ...)``).

**Our decision** (the release builds XS but never loads the mapped weights, so it trains from random init):
``weights=FILE`` loads a torchvision ``mvit_v2_s`` checkpoint through the mapping, strictly (every XS key must
be filled, every unused key must be one of S's dropped blocks or the head); ``weights=None`` is random init,
announced.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence

import torch
from torch import nn

from unmask.errors import UnmaskError

log = logging.getLogger("unmask")

#: XS block i comes from S block XS_FROM_S[i].
XS_FROM_S = (0, 1, 2, 3, 4, 5, 6, 7, 14, 15)
S_DROPPED = (8, 9, 10, 11, 12, 13)

# torchvision mvit_v2_s's per-block settings (heads, in, out, stride_q, stride_kv); kernels are 3x3x3 throughout
_S = {
    "num_heads": [1, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8],
    "input_channels": [96, 96, 192, 192, 384, 384, 384, 384, 384, 384, 384, 384, 384, 384, 384, 768],
    "output_channels": [96, 192, 192, 384, 384, 384, 384, 384, 384, 384, 384, 384, 384, 384, 768, 768],
    "stride_q": [[1, 1, 1], [1, 2, 2], [1, 1, 1], [1, 2, 2]] + [[1, 1, 1]] * 10 + [[1, 2, 2], [1, 1, 1]],
    "stride_kv": [[1, 8, 8], [1, 4, 4], [1, 4, 4]] + [[1, 2, 2]] * 11 + [[1, 1, 1], [1, 1, 1]],
}


def block_settings(blocks: Sequence[int] = tuple(range(16)), width: float = 1.0) -> list:
    """torchvision ``MSBlockConfig`` for the chosen S blocks, channels scaled by ``width`` (heads kept when
    they divide the channels, else reduced)."""
    from torchvision.models.video.mvit import MSBlockConfig

    out = []
    for i in blocks:
        cin, cout = (max(8, int(round(_S[k][i] * width))) for k in ("input_channels", "output_channels"))
        heads = _S["num_heads"][i]
        while cout % heads or cin % heads:
            heads //= 2
        out.append(MSBlockConfig(num_heads=heads, input_channels=cin, output_channels=cout, kernel_q=[3, 3, 3],
                                 kernel_kv=[3, 3, 3], stride_q=_S["stride_q"][i], stride_kv=_S["stride_kv"][i]))
    return out


def build_mvit(blocks: Sequence[int], *, size: int = 224, frames: int = 16, width: float = 1.0, drop_path: float = 0.2,
               num_classes: int = 400) -> nn.Module:
    """A torchvision MViT (v2: relative positions, residual pooling) with the chosen blocks of S."""
    from torchvision.models.video.mvit import MViT

    return MViT(spatial_size=(size, size), temporal_size=frames, block_setting=block_settings(blocks, width),
                residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True,
                stochastic_depth_prob=drop_path, num_classes=num_classes)


def xs_state_from_s(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchvision ``mvit_v2_s`` state dict -> XS's (blocks renumbered, dropped blocks and head removed)."""
    to_xs = {s: x for x, s in enumerate(XS_FROM_S)}
    out, unused = {}, []
    for key, value in state.items():
        m = re.match(r"blocks\.(\d+)\.(.*)", key)
        if m:
            s = int(m.group(1))
            if s in to_xs:
                out[f"blocks.{to_xs[s]}.{m.group(2)}"] = value
            elif s in S_DROPPED:
                continue
            else:
                unused.append(key)
        elif key.startswith("head."):
            continue
        else:
            out[key] = value
    if unused:
        raise UnmaskError(f"not an mvit_v2_s checkpoint: unexpected key(s) {', '.join(unused[:5])}")
    return out


class MViTXS(nn.Module):
    """``[B, 3, T, H, W]`` -> ``X [B, C, T', N]`` (IFDD's map: C = 768 x width, N = (H/32)^2)."""

    def __init__(self, *, size: int = 224, frames: int = 16, width: float = 1.0, drop_path: float = 0.2):
        super().__init__()
        self.mvit = build_mvit(XS_FROM_S, size=size, frames=frames, width=width, drop_path=drop_path)
        self.mvit.head = nn.Identity()  # no classifier: the head is IFDD's
        settings = block_settings(XS_FROM_S, width)
        c3, c4 = settings[7].output_channels, settings[-1].output_channels
        self.down = nn.Conv2d(c3, c3, 3, stride=2, padding=2, dilation=2)
        self.fuse = nn.Conv2d(c3 + c4, c4, 1)
        self.channels = c4

    @staticmethod
    def _grid(x: torch.Tensor, thw) -> torch.Tensor:  # tokens [B, 1 + T*H*W, C] -> [B*T, C, H, W]
        t, h, w = thw
        x = x[:, 1:].reshape(x.shape[0], t, h, w, -1)
        return x.permute(0, 1, 4, 2, 3).flatten(0, 1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        m = self.mvit
        x = m.conv_proj(clip).flatten(2).transpose(1, 2)
        x = m.pos_encoding(x)
        thw = (m.pos_encoding.temporal_size,) + m.pos_encoding.spatial_size
        mid = None
        for i, block in enumerate(m.blocks):
            x, thw = block(x, thw)
            if i == 7:
                mid = (x, thw)
        b, t = clip.shape[0], thw[0]
        mid_map = self.down(self._grid(*mid))  # [B*T', 384, h/2, w/2]
        last = self._grid(m.norm(x), thw)  # [B*T', 768, h, w]
        fused = self.fuse(torch.cat([mid_map, last], 1))  # [B*T', 768, h, w]
        return fused.flatten(2).view(b, t, self.channels, -1).permute(0, 2, 1, 3)  # [B, C, T', N]

    def load_s_checkpoint(self, state: dict[str, torch.Tensor], what: str = "checkpoint") -> None:
        """Load a torchvision ``mvit_v2_s`` state dict through the XS mapping, strictly."""
        mapped = xs_state_from_s(state)
        own = self.mvit.state_dict()
        missing = [k for k in own if k not in mapped]
        unexpected = [k for k in mapped if k not in own]
        shape = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in mapped.items()
                 if k in own and v.shape != own[k].shape]
        if missing or unexpected or shape:
            raise UnmaskError(f"{what} does not fit MViTv2-S XS", [f"missing: {k}" for k in missing[:5]]
                              + [f"unexpected: {k}" for k in unexpected[:5]] + [f"shape {s}" for s in shape[:5]])
        self.mvit.load_state_dict(mapped, strict=True)


def load_torchvision_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A torchvision ``.pth`` (a state dict; also accepted: ``{"model": state_dict}``), loaded weights-only."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise UnmaskError(f"weights file not found: {path} (a torchvision mvit_v2_s checkpoint, e.g. "
                          "mvit_v2_s-ae3be167.pth)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (pickle and zip errors have no common base)
        raise UnmaskError(f"cannot read {path} as a torch checkpoint: {e}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise UnmaskError(f"{path}: expected a state dict")
    return state


def mvit_xs(weights: str | os.PathLike | None = None, *, size: int = 224, frames: int = 16, width: float = 1.0, drop_path: float = 0.2) -> MViTXS:
    """The XS video backbone; ``weights``: a torchvision ``mvit_v2_s`` file (mapped), or None (random, said)."""
    model = MViTXS(size=size, frames=frames, width=width, drop_path=drop_path)
    if weights is None:
        log.warning("MViTv2-S XS: random initialisation (weights=None); pass a torchvision mvit_v2_s checkpoint "
                    "file for Kinetics-400 features")
    else:
        model.load_s_checkpoint(load_torchvision_checkpoint(weights), what=str(weights))
    return model
