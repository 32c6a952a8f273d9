"""A lazy clip dataset: T frames per clip read from a prepared set's PNG crops when a batch asks for them.

Holding a dataset's frames in memory costs ``N x T x 3 x H x W`` bytes (2,000 clips of 16 frames at 224 px:
4.8 GB); this dataset holds clip ids only, so memory stays flat in the number of clips, and a
``DataLoader`` with worker processes decodes in parallel::

    ds = ClipDataset(PreparedSet("data/prepared"), ids, frames=16, size=224)
    loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=2)
    for index, clips in loader:          # index: int64 [B] into ids; clips: uint8 [B, 16, 3, 224, 224]
        ...

``frames`` is a role (``"apex"``, ``"onset"``, ``"offset"``: one frame, ``[3, size, size]``) or a number
``T`` of frames (``[T, 3, size, size]``) taken evenly, in time order, from the clip's sampled frames
(all of them when ``T`` equals their number; repeats when the clip has fewer). Frames are decoded with
OpenCV and resized with the in-memory path's :func:`~unmask.data.transforms.resize_uint8`, so both give the
same pixels. Labels and subjects stay with the caller, who knows the tasks; ``index`` finds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from unmask.data.transforms import resize_uint8
from unmask.errors import UnmaskError

if TYPE_CHECKING:
    from unmask.data.prepare import PreparedSet

ROLES = ("onset", "apex", "offset")


def even_picks(available: int, wanted: int) -> list[int]:
    """``wanted`` indices into ``available`` frames, spread evenly from the first to the last (both kept)."""
    if wanted == 1:
        return [(available - 1) // 2]
    return [int(i) for i in np.rint(np.linspace(0, available - 1, wanted))]


class ClipDataset(Dataset):
    """``ds[i] -> (i, uint8 [T, 3, size, size])`` (or ``[3, size, size]`` for a role) for ``clip_ids[i]``."""

    def __init__(self, prepared_set: PreparedSet, clip_ids: Iterable[str], frames: str | int, size: int, with_flow: bool = False):
        self.prepared = prepared_set
        self.clip_ids = list(clip_ids)
        if isinstance(frames, str) and frames not in ROLES:
            raise UnmaskError(f"unknown frames {frames!r}; expected a number of frames or one of {', '.join(ROLES)}")
        if not isinstance(frames, str) and (not isinstance(frames, int) or frames < 1):
            raise UnmaskError(f"frames must be a role ({', '.join(ROLES)}) or a number >= 1, got {frames!r}")
        if size < 1:
            raise UnmaskError(f"size must be >= 1, got {size}")
        self.frames, self.size, self.with_flow = frames, int(size), bool(with_flow)

    def __len__(self) -> int:
        return len(self.clip_ids)

    def paths(self, index: int) -> list:
        """The PNG files item ``index`` is made of, in time order."""
        cid = self.clip_ids[index]
        if isinstance(self.frames, str):
            return [self.prepared.role_path(cid, self.frames)]
        paths = self.prepared.clip_paths(cid)
        flow = [self.prepared.flow_path(cid)] if self.with_flow else []  # clip_flow: the flow as a last frame
        return [paths[k] for k in even_picks(len(paths), self.frames)] + flow

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        rgb = np.stack([self.prepared._read_png(p) for p in self.paths(index)])  # [T, H, W, 3]
        frames = resize_uint8(torch.from_numpy(rgb).permute(0, 3, 1, 2), self.size)  # [T, 3, size, size]
        return index, frames[0] if isinstance(self.frames, str) else frames

    def __repr__(self) -> str:
        return f"ClipDataset({self.prepared!r}, {len(self)} clips, frames={self.frames!r}, size={self.size})"
