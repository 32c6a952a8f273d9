"""Clip windows (data.window, data.test_windows): random window starts at training, every non-overlapping window
averaged (or one seeded window) at validation and test, on the cached and the image path."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import zlib

import numpy as np
import pandas as pd
import pytest
import torch

from unmask.cli import main
from unmask.errors import UnmaskError
from unmask.train.windows import Windows

K, T = 4, 2  # tiny_synth's prepared clips hold 4 frames; windows of 2
RUN = ["model.name=temporal_transformer", "model.backbone=tiny_resnet", "model.weights=null",
       "model.backbone_args.img_size=32", "model.args.temporal_transformer.frames=2",
       "model.args.temporal_transformer.dim=16", "model.args.temporal_transformer.depth=1",
       "model.args.temporal_transformer.heads=2", "data.paradigm=clip", "data.masked_only=true", "data.window=2",
       "optim.epochs=2", "optim.warmup_epochs=0", "optim.batch_size=16", "features.views=1",
       "features.precision=fp32", "augment.hflip=false", "augment.rotation=0", "augment.color_jitter=0",
       "runtime.threads=1", "--folds", "s01", "--quiet"]


def test_window_starts():
    w = Windows(frames=10, window=4, test="all", seed=3, clip_ids=["a", "b", "c"])
    idx = torch.tensor([[0, 2], [1, 1]])
    starts = w.eval_starts(idx)
    assert [s.tolist() for s in starts] == [[[0, 0], [0, 0]], [[4, 4], [4, 4]]]  # frames 8, 9 are left out
    assert w.frame_index(torch.tensor([1, 6])).tolist() == [[1, 2, 3, 4], [6, 7, 8, 9]]
    fixed = Windows(frames=10, window=4, test="fixed", seed=3, clip_ids=["a", "b", "c"])
    (f,) = fixed.eval_starts(idx)
    expect = [zlib.crc32(f"3:{c}".encode()) % 7 for c in "abc"]
    assert f.tolist() == [[expect[0], expect[2]], [expect[1], expect[1]]]
    draws = torch.cat([w.train_starts(3, torch.Generator().manual_seed(s)) for s in range(40)])
    assert draws.min() == 0 and draws.max() == 6  # every start 0..K-T is drawn, none beyond
    with pytest.raises(UnmaskError, match="data.window=12, but the prepared clips hold 10 frames"):
        Windows(frames=10, window=12, test="all", seed=0, clip_ids=[])


def test_a_window_indexes_the_cached_frames_of_each_clips_view():
    """Features[F, B] with views and starts: row (f, b) is cache[view, clip, start:start + T] (tokens kept)."""
    from types import SimpleNamespace

    from unmask.train.batches import Features

    cache = torch.randn(3, 5, 6, 4, 2)  # [V, N, K, tokens, C]
    w = Windows(frames=6, window=3, test="all", seed=0, clip_ids=list("abcde"))
    get = Features(SimpleNamespace(), None, cache, None, torch.device("cpu"), False, w)
    idx, views, starts = torch.tensor([[0, 4], [2, 2]]), torch.tensor([[1, 2], [0, 1]]), torch.tensor([[3, 0], [1, 2]])
    out = get(idx, train=True, views=views, starts=starts)
    assert out.shape == (2, 2, 3, 4, 2)
    for f in range(2):
        for b in range(2):
            s = int(starts[f, b])
            assert torch.equal(out[f, b], cache[views[f, b], idx[f, b], s:s + 3])
    assert torch.equal(get(idx, train=False, starts=starts)[1, 0], cache[0, 2, 1:4])  # no views: view 0


def test_config_checks_windows():
    from unmask.config import load_config

    with pytest.raises(UnmaskError, match="data.window.*needs data.paradigm=clip"):
        load_config("dsid_synth", ["data.window=2"])
    with pytest.raises(UnmaskError, match="data.test_windows"):
        load_config("dsid_synth", ["data.paradigm=clip", "data.window=2", "data.test_windows=centre"])


def _fold_probs(run, prepared, starts_of):
    """Each test clip's probabilities recomputed from the checkpoint: the mean over ``starts_of(clip_id)``."""
    from unmask.checkpoint import load_checkpoint
    from unmask.data.datasets import load_frames
    from unmask.data.prepare import PreparedSet
    from unmask.data.transforms import Preprocess

    model, ckpt = load_checkpoint(run / "folds" / "s01" / "checkpoint.pt")
    assert ckpt["preprocess"]["clip_frames"] == T  # prediction on video reads windows of T
    data = load_frames(PreparedSet(prepared), "clip", size=32)
    idx = data.subset(["s01"])
    pre = Preprocess(ckpt["preprocess"]["mean"], ckpt["preprocess"]["std"])
    out = {}
    with torch.no_grad():
        for i in idx:
            clip = pre(data.images[i][None], train=False)  # [1, K, 3, H, W]
            p = [model(clip[:, s:s + T])["true_logits"].softmax(-1)[0].numpy() for s in starts_of(data.clip_ids[i])]
            out[data.clip_ids[i]] = np.mean(p, axis=0)
    saved = pd.read_csv(run / "folds" / "s01" / "predictions.csv", dtype={"clip_id": str}).set_index("clip_id")
    cols = [c for c in saved if c.startswith("true_p_")]
    return np.stack([out[c] for c in saved.index]), saved[cols].to_numpy()


def test_all_windows_averaged_at_test_and_random_starts_at_training(tiny_synth, tmp_path, monkeypatch):
    import unmask.train.engine as E

    seen = []
    call = E.Features.__call__

    def spy(self, idx, *, train, views=None, starts=None):
        if train:
            seen.append((starts is not None) and starts.clone())
        return call(self, idx, train=train, views=views, starts=starts)

    monkeypatch.setattr(E.Features, "__call__", spy)
    run = tmp_path / "all"
    assert main(["train", "--config", "ifdd_synth", f"data.prepared={tiny_synth[1]}", *RUN, "optim.mixup=0.8",
                 "optim.cutmix=1.0", "--out", str(run)]) == 0  # mixup/cutmix on windows of cached features
    ours, saved = _fold_probs(run, tiny_synth[1], lambda cid: range(0, K - T + 1, T))  # windows at 0 and 2
    np.testing.assert_allclose(saved, ours, atol=1e-4)
    starts = torch.cat([s.flatten() for s in seen])
    assert seen and all(s is not False for s in seen)  # every training batch got windows
    assert set(starts.tolist()) == {0, 1, 2}  # random starts, every position of a 4-frame clip drawn


def test_a_fixed_seeded_window_on_the_image_path(tiny_synth, tmp_path):
    run = tmp_path / "fixed"
    assert main(["train", "--config", "ifdd_synth", f"data.prepared={tiny_synth[1]}", *RUN,
                 "data.test_windows=fixed", "features.cache=never", "runtime.seed=5", "--out", str(run)]) == 0
    ours, saved = _fold_probs(run, tiny_synth[1], lambda cid: [zlib.crc32(f"5:{cid}".encode()) % (K - T + 1)])
    np.testing.assert_allclose(saved, ours, atol=1e-4)


def test_windows_on_the_stacked_path_give_each_fold_what_it_gets_alone(tiny_synth, tmp_path):
    """frame_average with plain Adam trains its folds as one stack; each fold draws its window starts from its own
    generator, so a fold in the stack predicts what it predicts alone."""
    stacked = ["model.name=frame_average", "optim.name=adam", "optim.schedule=none", "optim.warmup_epochs=0",
               "optim.grad_clip=0"]
    args = [a for a in RUN if a not in ("--folds", "s01")]
    for name, folds in (("both", "s01,s02"), ("alone", "s01")):
        assert main(["train", "--config", "ifdd_synth", f"data.prepared={tiny_synth[1]}", *args, *stacked,
                     "--folds", folds, "--out", str(tmp_path / name)]) == 0
    both = pd.read_csv(tmp_path / "both" / "folds" / "s01" / "predictions.csv")
    alone = pd.read_csv(tmp_path / "alone" / "folds" / "s01" / "predictions.csv")
    cols = [c for c in both if c.startswith("true_p_")]
    np.testing.assert_allclose(both[cols].to_numpy(), alone[cols].to_numpy(), atol=1e-5)
