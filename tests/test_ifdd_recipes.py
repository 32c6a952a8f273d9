"""The shipped DFEW recipe (configs/ifdd_dfew.yaml) run as it is, with tiny overrides, on a DFEW-layout set
(`unmask synth --kind dfer` writes DFEW's layout) through `unmask import dfew` -> `prepare` -> `train`; and IFDD and
the plain video-backbone baseline fine-tuned end to end through the tiny XS video backbone (path (a))."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from unmask.cli import main

K = 16  # frames prepared per clip
COMMON = ["optim.epochs=1", "optim.warmup_epochs=0", "optim.batch_size=8", "features.precision=fp32",
          "augment.color_jitter=0", "runtime.threads=1", "--folds", "set_2", "--quiet"]


@pytest.fixture(scope="module")
def dfew(tiny_dfew, tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dfew_recipe")
    for f in tiny_dfew.iterdir():  # the session's tiny set (DFEW/) and its import (dfew.csv + sidecars), read-only
        (root / f.name).symlink_to(f)
    # as the config's description says (--detector none: DFEW's clips are face crops already)
    assert main(["prepare", str(root / "dfew.csv"), "--out", str(root / "dfew_prepared"), "--frames", f"uniform:{K}",
                 "--detector", "none", "--size", "64", "--no-progress"]) == 0
    return root


def _recomputed(run, prepared, window):
    """The fold's test probabilities recomputed from its checkpoint alone: every non-overlapping window of each
    prepared clip through the rebuilt model, averaged, as the run's evaluation does (data.test_windows=all)."""
    from unmask.checkpoint import load_checkpoint
    from unmask.data.datasets import load_frames
    from unmask.data.prepare import PreparedSet
    from unmask.data.transforms import Preprocess

    model, ckpt = load_checkpoint(run / "folds" / "set_2" / "checkpoint.pt")
    data = load_frames(PreparedSet(prepared), "clip", masked_only=False, size=ckpt["preprocess"]["input_size"][-1])
    idx = data.subset(["set_2"])
    pre = Preprocess(ckpt["preprocess"]["mean"], ckpt["preprocess"]["std"])
    x = pre(data.images[idx], train=False)  # [n, K, 3, H, W]
    with torch.no_grad():
        probs = np.mean([model(x[:, s:s + window])["emotion_logits"].softmax(-1).numpy()
                         for s in range(0, K - window + 1, window)], axis=0)
    saved = pd.read_csv(run / "folds" / "set_2" / "predictions.csv", dtype={"clip_id": str}).set_index("clip_id")
    saved = saved.loc[[data.clip_ids[i] for i in idx]]
    return model, ckpt, probs, saved[[c for c in saved if c.startswith("emotion_p_")]].to_numpy()


def test_the_shipped_dfew_recipe_runs_on_the_dfew_layout(dfew):
    run = dfew / "run_clip"
    assert main(["train", "--config", "ifdd_dfew", f"data.prepared={dfew / 'dfew_prepared'}",
                 "model.backbone=tiny_clip_vit", "model.weights=null", "model.args.ifdd.frames=4",
                 "model.args.ifdd.grid=2", "model.args.ifdd.heads=2", "data.window=4", *COMMON,
                 "--out", str(run)]) == 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    # the recipe as shipped: AdamW, cosine, mixup/cutmix with the switch, label smoothing, windows averaged at test,
    # DFEW's folds as the protocol with a training fold for validation
    assert (cfg["optim"]["name"], cfg["optim"]["schedule"], cfg["optim"]["mixup"], cfg["optim"]["cutmix"],
            cfg["optim"]["mix_switch"], cfg["optim"]["mix_on"]) == ("adamw", "cosine", 0.8, 1.0, 0.5, "pixels")
    assert cfg["loss"]["args"]["ifdd"]["label_smoothing"] == 0.1 and cfg["data"]["test_windows"] == "all"
    assert cfg["features"]["cache"] == "never" and cfg["protocol"]["validation"] == "subjects"
    metrics = json.loads((run / "folds" / "set_2" / "metrics.json").read_text())
    assert metrics["test"] == ["set_2"] and "set_2" not in metrics["val"] + metrics["train"]
    assert "| emotion | uar |" in (run / "report.md").read_text()
    _, ckpt, ours, saved = _recomputed(run, dfew / "dfew_prepared", 4)  # 4 windows of 4 frames averaged
    np.testing.assert_allclose(saved, ours, atol=1e-4)
    assert ckpt["preprocess"]["clip_frames"] == 4


@pytest.mark.parametrize("model", ["ifdd", "frame_average"])
def test_the_video_backbone_trains_end_to_end_and_its_checkpoint_predicts_as_in_training(dfew, model):
    """The shipped path-(a) recipe (ifdd_xs_dfew.yaml, model.mode=finetune) with tiny_mvit_xs: the clips [B, 8, 3, 64, 64] go whole through the video
    backbone (encodes_clips) and the backbone trains with the head; frame_average over it is the plain video
    backbone with a linear head."""
    run = dfew / f"run_xs_{model}"
    assert main(["train", "--config", "ifdd_xs_dfew", f"data.prepared={dfew / 'dfew_prepared'}", f"model.name={model}",
                 "model.backbone=tiny_mvit_xs", "model.weights=null",
                 "model.backbone_args={img_size: 64, num_frames: 8, stochastic_depth: 0.1}", "model.args.ifdd.frames=4",
                 "model.args.ifdd.grid=2", "model.args.ifdd.heads=4", "data.window=8", *COMMON,
                 "--out", str(run)]) == 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert (cfg["model"]["mode"], cfg["augment"]["normalization"], cfg["optim"]["cutmix"],
            cfg["optim"]["mix_on"]) == ("finetune", "backbone", 1.0, "pixels")
    rebuilt, ckpt, ours, saved = _recomputed(run, dfew / "dfew_prepared", 8)  # 2 windows of 8 frames averaged
    np.testing.assert_allclose(saved, ours, atol=1e-4)
    assert rebuilt.encodes_clips and rebuilt.model_args["backbone"] == "tiny_mvit_xs"
    assert ckpt["preprocess"]["mean"] == [0.45] * 3  # the video backbone's own (Kinetics) normalisation
    assert any(k.startswith("backbone.") for k in ckpt["state_dict"])  # the trained backbone is in the checkpoint
    # end to end: a step of the rebuilt model gives every backbone parameter a gradient
    rebuilt.train()
    x = torch.randn(2, 8, 3, 64, 64)
    rebuilt(x)["emotion_logits"].logsumexp(-1).sum().backward()
    grads = [p.grad for p in rebuilt.backbone.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    # prediction: the Predictor gives whole windows of face crops to the video backbone; the prepared crops of each
    # test clip, as two windows of 8 averaged, give the run's test probabilities
    from unmask.data.manifest import read_manifest
    from unmask.data.prepare import PreparedSet
    from unmask.predict import Predictor

    p = Predictor.from_checkpoint(run / "folds" / "set_2", device="cpu", calibrated=False)  # raw, as predictions.csv
    ps = PreparedSet(dfew / "dfew_prepared")
    ids = pd.read_csv(run / "folds" / "set_2" / "predictions.csv", dtype={"clip_id": str}).clip_id
    crops = np.stack([ps.load_clip(cid) for cid in ids])  # uint8 [n, 16, 64, 64, 3]
    got = [p.predict_crops(crops[:, s:s + 8]) for s in (0, 8)]
    np.testing.assert_allclose((got[0]["emotion"] + got[1]["emotion"]) / 2, saved, atol=1e-4)
    assert got[0]["features"].shape == (len(ids), rebuilt.backbone.num_features)  # one vector per clip
    video = next(c.video for c in read_manifest(dfew / "dfew.csv") if c.subject == "set_2")
    df = p.predict_video(video, every=2)  # windows of 8 sampled frames over the whole video
    cols = [c for c in df if c.startswith("emotion_p_")]
    assert len(df) > 8 and np.allclose(df[cols].to_numpy(float).sum(1), 1, atol=1e-4)


def test_a_clip_of_the_wrong_length_is_refused_with_the_fix():
    from unmask.errors import UnmaskError
    from unmask.models import create_backbone, create_model
    from unmask.tasks import Task

    bb = create_backbone("tiny_mvit_xs")
    with pytest.raises(UnmaskError, match=r"reads clips of 8 frames .*data.window=8"):
        bb.forward_features(torch.zeros(1, 4, 3, 64, 64))
    task = Task(name="emotion", kind="single", labels=tuple("abcdefg"))
    with pytest.raises(UnmaskError, match=r"set model.args.ifdd.frames=4"):
        create_model("ifdd", tasks=(task,), backbone="tiny_mvit_xs", frames=8, grid=2, heads=4)
