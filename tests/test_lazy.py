"""Frames read lazily from the prepared crops give what the in-memory stack gives: pixels, features, training."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import torch

from unmask.cli import main
from unmask.data.datasets import LazyFrames, load_frames
from unmask.data.prepare import PreparedSet


def test_lazy_frames_equal_the_in_memory_stack(tiny_synth):
    ps = PreparedSet(tiny_synth[1])
    for paradigm in ("apex", "clip"):
        mem = load_frames(ps, paradigm, size=32, lazy=False)
        lazy = load_frames(ps, paradigm, size=32, lazy=True)
        assert isinstance(lazy.images, LazyFrames) and isinstance(mem.images, torch.Tensor)
        assert lazy.images.shape == mem.images.shape and lazy.images.dim() == mem.images.dim()
        assert lazy.fingerprint == mem.fingerprint  # the same frames: the same feature cache
        idx = torch.tensor([5, 0, 77, 31])
        assert torch.equal(lazy.images[idx], mem.images[idx]) and torch.equal(lazy.images[3:9], mem.images[3:9])
        streamed = torch.cat([b for _, b in lazy.images.batches(16)])  # DataLoader workers, in order
        assert torch.equal(streamed, mem.images)
    # auto: lazy only when holding the frames would pass the budget
    assert isinstance(load_frames(ps, "clip", size=32, memory_gb=1e-6).images, LazyFrames)
    assert isinstance(load_frames(ps, "clip", size=32, memory_gb=1.0).images, torch.Tensor)


def test_training_on_lazy_frames_gives_the_same_results(tiny_synth, tmp_path):
    """The image path (fine-tuning) and the feature cache both read lazy frames; the metrics are the same."""
    common = ["train", "--config", "dsid_synth", f"data.prepared={tiny_synth[1]}", "model.backbone=tiny_resnet",
              "model.weights=null", "model.backbone_args.img_size=32", "model.args.dsid.adapter_dim=16",
              "model.args.dsid.branch_dim=8", "optim.epochs=2", "optim.patience=2", "optim.batch_size=16",
              "features.views=2", "features.precision=fp32", "--folds", "s02", "--quiet"]
    for mode in ("frozen", "finetune"):
        runs = {}
        for lazy in ("never", "always"):
            out = tmp_path / f"{mode}-{lazy}"
            extra = [f"features.cache_dir={tmp_path / f'cache-{lazy}'}"]
            assert main([*common, f"model.mode={mode}", f"data.lazy={lazy}", *extra, "--out", str(out)]) == 0
            runs[lazy] = json.loads((out / "folds" / "s02" / "metrics.json").read_text())
        for task in ("true", "disguised"):
            assert runs["never"][task] == runs["always"][task], (mode, task)
