"""Frames for training: a paradigm picks frames from a prepared set, loaded once into memory, or read lazily
from the prepared crops when the set would not fit (:class:`LazyFrames`).

``apex`` and ``onset`` give one frame per clip (``images``: uint8 ``[N, 3, H, W]``); ``clip`` gives the K
frames sampled between onset and offset (``[N, K, 3, H, W]``); ``clip_flow`` adds the cached onset-to-apex
flow as one more frame (``[N, K + 1, 3, H, W]``, uint8-encoded: :mod:`unmask.data.flow`). Labels come per task (:mod:`unmask.tasks`):
a single-label task's are class indices ``[N]`` (-1 = not annotated), a multi-label task's 0/1 ``[N, L]``
(NaN = not annotated).
Crops are decoded from PNG once and resized once to the backbone's input size, so no epoch, fold or sweep
point pays for decoding or resizing again. Decoding runs on a thread pool (OpenCV releases the GIL while it
decodes); the result is identical to a serial load, in the same order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from unmask.data.paradigms import check_paradigm, is_clip
from unmask.data.transforms import resize_uint8
from unmask.errors import UnmaskError
from unmask.tasks import Task

if TYPE_CHECKING:
    from unmask.data.clips import ClipDataset
    from unmask.data.prepare import PreparedSet


def label_tensor(task: Task, values: Iterable[Any]) -> torch.Tensor:
    """Parsed labels of one task -> its targets: int64 ``[N]`` (single) or float32 ``[N, L]`` (multi)."""
    targets = [task.target(v) for v in values]
    if task.kind == "single":
        return torch.tensor(targets, dtype=torch.long)
    return torch.tensor(targets, dtype=torch.float32).view(len(targets), task.num_classes)


@dataclass
class FrameData:
    clip_ids: list[str]
    subjects: list[str]
    images: torch.Tensor | LazyFrames  # uint8 [N, 3, H, W] or [N, K, 3, H, W] (in memory, or read when indexed)
    tasks: tuple[Task, ...]
    labels: dict[str, torch.Tensor]  # task name -> int64 [N] (single) or float32 [N, L] (multi)
    paradigm: str
    source: dict  # what the frames were made from (for cache keys)

    def __len__(self) -> int:
        return len(self.clip_ids)

    def subset(self, subjects: Iterable[str]) -> np.ndarray:
        """Indices of the clips of ``subjects``."""
        wanted = set(subjects)
        return np.array([i for i, s in enumerate(self.subjects) if s in wanted], dtype=np.int64)

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps(self.source, sort_keys=True).encode())
        h.update("\n".join(self.clip_ids).encode())
        for task in self.tasks:
            h.update(task.name.encode() + self.labels[task.name].numpy().tobytes())
        h.update(str(tuple(self.images.shape)).encode())
        return h.hexdigest()[:16]


class LazyFrames:
    """The frames of N clips, read from the prepared crops when indexed: memory stays flat in the number of clips.

    Indexing like a uint8 tensor ``[N, (T,) 3, H, W]`` (an int, a slice, or an index array/tensor) decodes those
    clips on a thread pool (OpenCV releases the GIL while it decodes) through a
    :class:`~unmask.data.clips.ClipDataset`, the same pixels as the in-memory stack. :meth:`batches` streams
    them in order through a ``DataLoader`` with worker processes (feature extraction reads every clip once).
    """

    def __init__(self, dataset: ClipDataset, workers: int | None = None):
        self.dataset = dataset
        self.workers = workers or min(8, os.cpu_count() or 1)
        self._item = tuple(dataset[0][1].shape)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.dataset), *self._item))

    def dim(self) -> int:
        return 1 + len(self._item)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: Any) -> torch.Tensor:
        rows: Sequence[int]
        if isinstance(idx, slice):
            rows = range(*idx.indices(len(self)))
        elif isinstance(idx, int):
            return self.dataset[idx][1]
        else:
            rows = [int(i) for i in torch.as_tensor(idx).reshape(-1)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers)
        items = list(self._pool.map(lambda i: self.dataset[i][1], rows))
        return torch.stack(items) if items else torch.empty(0, *self._item, dtype=torch.uint8)

    def rows(self, start: int, stop: int) -> LazyFrames:
        """Clips ``start:stop`` as a lazy set of their own (a worker's shard of a feature extraction)."""
        from unmask.data.clips import ClipDataset

        d = self.dataset
        return LazyFrames(ClipDataset(d.prepared, d.clip_ids[start:stop], d.frames, d.size, with_flow=d.with_flow),
                          self.workers)

    def batches(self, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
        """``(start, uint8 [B, ...])`` in order, decoded ahead by DataLoader worker processes."""
        from torch.utils.data import DataLoader

        workers = min(self.workers, 4) if len(self) > batch_size else 0
        loader = DataLoader(self.dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
        for index, frames in loader:
            yield int(index[0]), frames

    def __getstate__(self) -> dict:  # a worker process gets the dataset, not the thread pool
        return {**self.__dict__, "_pool": None}


def frames_bytes(n: int, frames: int, size: int) -> int:
    return n * frames * 3 * size * size


def load_frames(prepared: PreparedSet, paradigm: str = "apex", *, masked_only: bool = True, size: int | None = None,
                workers: int | None = None, lazy: bool | str = "auto", memory_gb: float = 4.0) -> FrameData:
    """The frames of every finished clip of a :class:`~unmask.data.prepare.PreparedSet`, held in memory, or
    read lazily (:class:`LazyFrames`) with ``lazy=True``, or ``"auto"`` when holding them would take more than
    ``memory_gb`` (a lazy set needs ``size``).

    ``workers``: decoding threads (None: up to 8, one per CPU; 1: serial).
    """
    check_paradigm(paradigm)
    clips = prepared.manifest.by_id()
    ids = [c for c in prepared.clip_ids() if not (masked_only and clips[c].congruent)]
    if not ids:
        raise UnmaskError(f"no prepared clips to train on in {prepared.root}"
                          + (" (masked_only=true and every clip is congruent)" if masked_only else ""))
    labels = {t.name: label_tensor(t, [clips[c].labels[t.name] for c in ids]) for t in prepared.manifest.tasks}
    source = {"prepared": prepared.config, "paradigm": paradigm, "masked_only": masked_only, "size": size}
    with_flow = paradigm == "clip_flow"
    if with_flow:
        prepared.flow_path(ids[0])  # an error naming the fix when the set has no flow
    frames = len(prepared.clip_paths(ids[0])) + with_flow if is_clip(paradigm) else 1
    crop = prepared.config.get("size") or 224
    if lazy == "auto":
        lazy = size is not None and frames_bytes(len(ids), frames, size or crop) > memory_gb * 1e9
    if lazy:
        from unmask.data.clips import ClipDataset

        if size is None:
            raise UnmaskError("a lazily read set needs the model's input size")
        dataset = ClipDataset(prepared, ids, frames - with_flow if is_clip(paradigm) else paradigm, size,
                              with_flow=with_flow)
        return FrameData(clip_ids=ids, subjects=[clips[c].subject for c in ids], images=LazyFrames(dataset, workers),
                         tasks=prepared.manifest.tasks, labels=labels, paradigm=paradigm, source=source)

    def read(cid: str) -> np.ndarray:  # [K, H, W, 3] uint8
        if with_flow:
            return np.concatenate([prepared.load_clip(cid), prepared.load_flow(cid)[None]])
        return prepared.load_clip(cid) if paradigm == "clip" else prepared.load(cid, paradigm)[None]

    workers = workers or min(8, os.cpu_count() or 1)
    if workers > 1 and len(ids) > 1:
        with ThreadPoolExecutor(workers) as pool:
            arrays = list(pool.map(read, ids))  # map keeps the order of ids
    else:
        arrays = [read(cid) for cid in ids]
    stack = torch.from_numpy(np.stack(arrays)).permute(0, 1, 4, 2, 3).contiguous()  # [N, K, 3, H, W]
    if not is_clip(paradigm):
        stack = stack[:, 0]
    if size is not None:
        stack = resize_uint8(stack, size)
    return FrameData(
        clip_ids=ids,
        subjects=[clips[c].subject for c in ids],
        images=stack,
        tasks=prepared.manifest.tasks,
        labels=labels,
        paradigm=paradigm,
        source=source,
    )
