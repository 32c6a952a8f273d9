"""Clip windows: T consecutive frames cut from each prepared clip's K frames (``data.window=T``).

A prepared clip holds K frames (``prepare --frames uniform:K``); a model built for T < K frames sees one window of T
consecutive ones per example:

* training: a random start per clip and epoch (temporal jitter), drawn from the fold's own generator, like the
  feature views;
* validation and test (``data.test_windows``): ``all``, every non-overlapping window (starts 0, T, 2T, ...; the
  last ``K mod T`` frames are left out), the class probabilities averaged per clip (the DFEW test of IFDD's
  release); or ``fixed``, one window per clip whose start is seeded by the run seed and the clip id (the same in
  every fold and run; the release draws a new random window at every test).

With a frozen backbone the per-frame features of all K frames are cached once and a window only indexes them, so
windows cost nothing beyond the heads. ``data.window=0`` (the default) is the whole clip, one window: nothing
here runs and nothing is drawn from any generator, so runs without windows are unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from unmask.errors import UnmaskError

if TYPE_CHECKING:
    from unmask.config import Config
    from unmask.data.datasets import FrameData


class Windows:
    """Window starts for the clips of a run (``K`` prepared frames each, windows of ``T``)."""

    def __init__(self, frames: int, window: int, test: str, seed: int, clip_ids: Sequence[str]):
        if window > frames:
            raise UnmaskError(f"data.window={window}, but the prepared clips hold {frames} frames each: prepare more "
                              f"(--frames uniform:K with K >= {window}) or lower data.window")
        if test not in ("all", "fixed"):
            raise UnmaskError(f"data.test_windows: {test!r} is not one of all, fixed")
        self.frames, self.window, self.test = int(frames), int(window), test
        self.positions = self.frames - self.window + 1  # possible starts
        self.fixed = torch.tensor([zlib.crc32(f"{seed}:{cid}".encode()) % self.positions for cid in clip_ids],
                                  dtype=torch.long)  # [N]

    def train_starts(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``[n]`` random starts, one per clip, from ``gen``."""
        return torch.randint(self.positions, (n,), generator=gen)

    def eval_starts(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """The windows whose probabilities are averaged for clips ``idx [F, B]``: a list of starts ``[F, B]``."""
        idx = idx.cpu()
        if self.test == "fixed":
            return [self.fixed[idx]]
        return [torch.full(idx.shape, w * self.window, dtype=torch.long) for w in range(self.frames // self.window)]

    def frame_index(self, starts: torch.Tensor) -> torch.Tensor:
        """Starts ``[...]`` -> the window's frame indices ``[..., T]``."""
        return starts[..., None] + torch.arange(self.window, device=starts.device)


def clip_windows(cfg: Config, data: FrameData) -> Windows | None:
    """The run's :class:`Windows`, or None when ``data.window`` is 0 (every clip is one window)."""
    if not cfg.data.window:
        return None
    if data.images.dim() != 5:
        raise UnmaskError("data.window cuts windows from clips: it needs data.paradigm=clip")
    return Windows(data.images.shape[1], cfg.data.window, cfg.data.test_windows, cfg.runtime.seed, data.clip_ids)
