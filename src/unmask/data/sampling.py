"""Which frames of a clip ``prepare`` keeps: a sampling policy, chosen once per prepared set.

=================  ===========================================================================================
``keyframes``      the onset, apex and offset frames, and K frames spread from onset to offset (both ends
                   included; ``--clip-frames K``): masked expressions (DSID). Needs all three annotations.
``uniform:T``      T frames spread over the whole video: in-the-wild clips without key frames (DFEW, FERV39k,
                   MAFW). Needs no annotation.
``span:T``         T frames spread from onset to offset: micro-expressions (CASME II, SAMM, SMIC). Needs onset
                   and offset (SMIC annotates no apex).
``rise:T``         T frames spread from onset to apex: the rise of a micro-expression (MEDN's emotion branch).
                   Needs onset and apex.
=================  ===========================================================================================

Besides the T (or K) sampled frames, every key frame a row annotates is kept as a role crop (``onset``,
``apex``, ``offset``), so ``uniform`` and ``span`` sets still offer the apex where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unmask.errors import UnmaskError

ROLES = ("onset", "apex", "offset")
POLICIES = {"keyframes": ROLES, "uniform": (), "span": ("onset", "offset"), "rise": ("onset", "apex")}  # policy -> roles a row needs


@dataclass(frozen=True)
class Sampling:
    kind: str  # keyframes | uniform | span
    count: int  # frames sampled: K between onset and offset (keyframes), or T

    def __str__(self) -> str:
        return self.kind if self.kind == "keyframes" else f"{self.kind}:{self.count}"

    @property
    def needs(self) -> tuple[str, ...]:
        """The key frames a manifest row must annotate for this policy."""
        return POLICIES[self.kind]

    @property
    def needs_length(self) -> bool:
        """True when the frames depend on the video's length (known only by decoding it)."""
        return self.kind == "uniform"


def parse_sampling(text: str = "keyframes", clip_frames: int = 8) -> Sampling:
    """``keyframes`` (with ``clip_frames`` K), ``uniform:T`` or ``span:T`` -> a :class:`Sampling`."""
    kind, _, count = str(text).strip().partition(":")
    if kind not in POLICIES:
        raise UnmaskError(f"unknown frame sampling {text!r}; expected keyframes, uniform:T, span:T or rise:T")
    if kind == "keyframes":
        if count:
            raise UnmaskError(f"--frames keyframes takes no count (got {text!r}); set K with --clip-frames K")
        if clip_frames < 0:
            raise UnmaskError(f"--clip-frames must be >= 0, got {clip_frames}")
        return Sampling(kind, int(clip_frames))
    if not count.isdigit() or int(count) < 1:
        raise UnmaskError(f"--frames {kind}:T needs a number of frames T >= 1, got {text!r}")
    return Sampling(kind, int(count))


def clip_frame_indices(onset: int, offset: int, k: int) -> list[int]:
    """``k`` frame indices spread uniformly over ``[onset, offset]``, both ends included (repeats when the
    clip is shorter than ``k``)."""
    if k <= 0:
        return []
    if k == 1:
        return [int(round((onset + offset) / 2))]
    return [int(i) for i in np.rint(np.linspace(onset, offset, k))]


def missing_roles(clip: Any, sampling: Sampling) -> list[str]:
    """The key frames ``sampling`` needs that the manifest row of ``clip`` does not annotate."""
    return [r for r in sampling.needs if getattr(clip, r) is None]


def planned_frames(clip: Any, sampling: Sampling, num_frames: int | None = None) -> dict:
    """``{"onset": i, "apex": i, "offset": i, "clip": [i, ...]}``, roles only where the row annotates them.

    ``num_frames`` (the video's decoded length) is needed by ``uniform``."""
    frames = {r: getattr(clip, r) for r in ROLES if getattr(clip, r) is not None}
    if sampling.kind == "uniform":
        if not num_frames:
            raise UnmaskError(f"clip {clip.clip_id}: uniform sampling needs the video's length")
        frames["clip"] = clip_frame_indices(0, num_frames - 1, sampling.count)
    elif sampling.kind == "rise":  # from onset to apex
        frames["clip"] = clip_frame_indices(clip.onset, clip.apex, sampling.count)
    else:  # keyframes and span: from onset to offset
        frames["clip"] = clip_frame_indices(clip.onset, clip.offset, sampling.count)
    return frames
