"""IFDD end to end on a tiny synthetic DFEW-layout set: synth -> import dfew -> prepare -> train (the official fold
files as the protocol) -> a checkpoint that rebuilds the model and predicts a clip as in training."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch

from unmask.cli import main
from unmask.data.manifest import read_manifest


@pytest.fixture(scope="module")
def dfer_run(tiny_dfew, tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dfer")
    for f in tiny_dfew.iterdir():  # the session's tiny set (DFEW/) and its import (dfew.csv + sidecars), read-only
        (root / f.name).symlink_to(f)
    assert main(["prepare", str(root / "DFEW" / "manifest.csv"), "--out", str(root / "prep"), "--frames", "uniform:4",
                 "--detector", "annotated", "--size", "64", "--no-progress"]) == 0
    overrides = [f"data.prepared={root / 'prep'}", "model.weights=null", "model.args.ifdd.frames=4",
                 "optim.epochs=2", "optim.warmup_epochs=1", "features.views=1", "augment.hflip=false",
                 "augment.rotation=0", "augment.color_jitter=0", "optim.batch_size=8", "features.precision=fp32"]
    assert main(["train", "--config", "ifdd_synth", *overrides, "--out", str(root / "run"), "--quiet"]) == 0
    return root


def test_synthetic_set_has_ground_truth_and_the_dfew_layout(dfer_run):
    root = dfer_run / "DFEW"
    m = read_manifest(root / "manifest.csv")
    assert len(m) == 35 and m.subjects == [f"set_{k}" for k in range(1, 6)]
    assert {c.labels["emotion"] for c in m} == {"happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"}
    # the adapter read the generated split files: the same clips and labels as the synth's own manifest
    imported = read_manifest(dfer_run / "dfew.csv")
    assert [(c.clip_id, c.subject, c.labels) for c in imported] == [(c.clip_id, c.subject, c.labels) for c in m]
    truth = list(csv.DictReader(open(root / "truth.csv")))
    for row in truth:
        clip = m.by_id()[f"{int(row['video_name']):05d}"]
        assert clip.labels["emotion"] == row["label"] and clip.subject == f"set_{row['fold']}"
        ann = pd.read_csv(clip.annotations)
        assert len(ann) == int(row["frames"])
        event = ann.index[ann.event == 1]
        if row["label"] == "neutral":  # no expression event; the resting face is constant over the clip
            assert len(event) == 0
        else:  # the event is where truth.csv says, and it is diluted: only part of the clip
            assert (event.min(), event.max()) == (int(row["event_start"]), int(row["event_end"]))
            assert len(event) < 0.6 * len(ann)
    persons_per_fold = {}
    for row in truth:
        persons_per_fold.setdefault(row["person"], set()).add(row["fold"])
    assert all(len(folds) == 1 for folds in persons_per_fold.values())  # no person in two folds
    cfg = json.loads((root / "synth.json").read_text())
    assert cfg["kind"] == "dfer" and cfg["rest_bias"] > 0


def test_training_uses_the_fold_files_and_reports_war_uar_with_cis(dfer_run):
    run = dfer_run / "run"
    folds = sorted(p.name for p in (run / "folds").iterdir())
    assert folds == [f"set_{k}" for k in range(1, 6)]
    for f in folds:
        metrics = json.loads((run / "folds" / f / "metrics.json").read_text())
        assert metrics["test"] == [f] and f not in metrics["val"] and f not in metrics["train"]
    report = (run / "report.md").read_text()
    assert "| emotion | accuracy |" in report and "| emotion | uar |" in report and "[" in report
    log = pd.read_csv(run / "folds" / "set_1" / "log.csv")
    assert "context" in log.columns  # the context constraint was trained and logged


def test_a_checkpoint_rebuilds_and_predicts_a_clip_as_in_training(dfer_run):
    from unmask.checkpoint import load_checkpoint
    from unmask.data.datasets import load_frames
    from unmask.data.prepare import PreparedSet
    from unmask.data.transforms import Preprocess

    model, ckpt = load_checkpoint(dfer_run / "run" / "folds" / "set_2" / "checkpoint.pt")
    assert model.model_args["name"] == "ifdd" and ckpt["preprocess"]["paradigm"] == "clip"
    data = load_frames(PreparedSet(dfer_run / "prep"), "clip", masked_only=False,
                       size=ckpt["preprocess"]["input_size"][-1])
    idx = data.subset(["set_2"])
    pre = Preprocess(ckpt["preprocess"]["mean"], ckpt["preprocess"]["std"])
    with torch.no_grad():
        probs = model(pre(data.images[idx], train=False))["emotion_logits"].softmax(-1).numpy()  # [7 clips, 7]
    saved = pd.read_csv(dfer_run / "run" / "folds" / "set_2" / "predictions.csv", dtype={"clip_id": str}).set_index("clip_id")
    saved = saved.loc[[data.clip_ids[i] for i in idx]]
    cols = [c for c in saved if c.startswith("emotion_p_")]
    np.testing.assert_allclose(probs, saved[cols].to_numpy(), atol=1e-4)


def test_predict_on_a_video_gives_per_window_predictions_as_in_training(dfer_run, tmp_path):
    """A clip model on a video: consecutive windows of T sampled frames per face track. For a clip of 3k+1 frames,
    --every k samples exactly the frames prepare took (uniform:4), so the first window's probabilities are the
    training run's prediction for that clip."""
    from test_predict import ManifestBoxes
    from unmask.predict import Predictor

    m = read_manifest(dfer_run / "DFEW" / "manifest.csv")
    saved = pd.read_csv(dfer_run / "run" / "folds" / "set_2" / "predictions.csv", dtype={"clip_id": str})
    saved = saved.set_index("clip_id")
    clip = next(c for c in m if c.subject == "set_2" and (len(pd.read_csv(c.annotations)) - 1) % 3 == 0)
    k = (len(pd.read_csv(clip.annotations)) - 1) // 3
    base = Predictor.from_checkpoint(dfer_run / "run" / "folds" / "set_2", device="cpu")
    p = Predictor(base.model, base.ckpt, device=base.device, detector=ManifestBoxes(clip.annotations),
                  calibrated=False)  # raw, as predictions.csv
    df = p.predict_video(clip.video, every=k)
    first = df[df.frame <= 3 * k]
    assert list(first.frame) == [0, k, 2 * k, 3 * k]
    cols = [c for c in saved if c.startswith("emotion_p_")]
    probs = first[cols].to_numpy(float)
    assert (probs == probs[0]).all()  # one window, one prediction on each of its rows
    np.testing.assert_allclose(probs[0], saved.loc[clip.clip_id, cols].to_numpy(float), atol=2e-4)
    # --annotate: the annotated video and the timeline of each class's probability over the windows
    from unmask.predict.render import annotate_all

    written = annotate_all(df, tmp_path / "ann", p.tasks)
    assert sorted(w.name for w in written) == [f"{clip.video.stem}.annotated.mp4", f"{clip.video.stem}.timeline.png"]
    assert (tmp_path / "ann" / f"{clip.video.stem}.timeline.png").read_bytes()[:4] == b"\x89PNG"
