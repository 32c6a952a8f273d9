"""ClipDataset: lazy frames from a prepared set are the in-memory path's pixels, in order, through worker
processes, and the dataset holds no frames itself."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch.utils.data import DataLoader

from unmask.data.clips import ClipDataset, even_picks
from unmask.data.datasets import load_frames
from unmask.data.prepare import PreparedSet
from unmask.errors import UnmaskError


@pytest.fixture(scope="module")
def prepared(tiny_synth):
    return PreparedSet(tiny_synth[1])


@pytest.mark.parametrize("frames,paradigm", [(4, "clip"), ("apex", "apex"), ("onset", "onset")])
@pytest.mark.parametrize("size", [64, 40])
def test_frames_equal_the_in_memory_path(prepared, frames, paradigm, size):
    memory = load_frames(prepared, paradigm, masked_only=False, size=size, workers=1)
    ds = ClipDataset(prepared, memory.clip_ids, frames=frames, size=size)
    assert len(ds) == len(memory)
    for i in (0, 7, len(ds) - 1):
        index, x = ds[i]
        assert index == i and x.dtype == torch.uint8
        assert torch.equal(x, memory.images[i])  # [T, 3, size, size] or [3, size, size]


def test_fewer_or_more_frames_are_spread_evenly_in_time_order(prepared):
    cid = prepared.clip_ids()[0]
    whole = torch.from_numpy(prepared.load_clip(cid)).permute(0, 3, 1, 2)  # [4, 3, 64, 64]
    assert even_picks(4, 2) == [0, 3] and even_picks(4, 1) == [1] and even_picks(4, 7) == [0, 0, 1, 2, 2, 2, 3]
    two = ClipDataset(prepared, [cid], frames=2, size=64)[0][1]
    assert torch.equal(two, whole[[0, 3]])
    seven = ClipDataset(prepared, [cid], frames=7, size=64)[0][1]
    assert torch.equal(seven, whole[[0, 0, 1, 2, 2, 2, 3]])


def test_worker_processes_give_the_same_batches_and_the_dataset_holds_no_frames(prepared):
    ids = prepared.clip_ids()[:20]
    ds = ClipDataset(prepared, ids, frames=4, size=32)
    serial = list(DataLoader(ds, batch_size=6, num_workers=0))
    parallel = list(DataLoader(ds, batch_size=6, num_workers=2))
    assert [b[0].tolist() for b in parallel] == [list(range(i, min(i + 6, 20))) for i in range(0, 20, 6)]
    for (i, x), (j, y) in zip(serial, parallel):
        assert torch.equal(i, j) and torch.equal(x, y) and x.shape[1:] == (4, 3, 32, 32)
    # what a worker receives is ids and paths, not pixels: 20 clips of 4 x 3 x 32 x 32 would be 245 KB
    assert len(pickle.dumps(ds)) < 245_760 // 8


def test_bad_arguments_and_unprepared_clips(prepared):
    with pytest.raises(UnmaskError, match="onset, apex, offset"):
        ClipDataset(prepared, [], frames="middle", size=32)
    with pytest.raises(UnmaskError, match="number >= 1"):
        ClipDataset(prepared, [], frames=0, size=32)
    with pytest.raises(UnmaskError, match="'nope' is not prepared"):
        ClipDataset(prepared, ["nope"], frames=4, size=32)[0]
