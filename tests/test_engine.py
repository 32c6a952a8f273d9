"""Engine contracts: cached features == image path, kill-and-resume == uninterrupted, determinism, learning."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import numpy as np
import pandas as pd
import pytest
import torch

from unmask.config import load_config
from unmask.data.datasets import FrameData
from unmask.emotions import MFED_TASKS
from unmask.errors import UnmaskError
from unmask.train.engine import build_model, fit_fold
from unmask.train.features import cached_features
from unmask.train.protocols import make_folds


def toy_data(n_subjects=4, per_subject=18, size=32, seed=0) -> FrameData:
    """Noisy images whose red level encodes the true label and blue level the disguised label."""
    g = torch.Generator().manual_seed(seed)
    n = n_subjects * per_subject
    true = torch.arange(n) % 6
    disguised = (true + 1 + torch.arange(n) // 6 % 5) % 6
    img = torch.rand(n, 3, size, size, generator=g) * 60 + 20
    img[:, 0] += (true * 30).float()[:, None, None]  # red level: the true label
    img[:, 2] += (disguised * 30).float()[:, None, None]  # blue level: the disguised label
    return FrameData(clip_ids=[f"c{i:03d}" for i in range(n)], subjects=[f"s{i // per_subject}" for i in range(n)],
                     images=img.clamp(0, 255).to(torch.uint8), tasks=MFED_TASKS,
                     labels={"true": true, "disguised": disguised}, paradigm="apex",
                     source={"toy": seed})


def toy_cfg(*overrides):
    return load_config(None, ["model.backbone=tiny_vit", "model.weights=null", "model.backbone_args.img_size=32",
                              "model.args.dsid.adapter_dim=32", "model.args.dsid.branch_dim=16", "optim.epochs=6", "optim.patience=6",
                              "optim.batch_size=16", "optim.lr=3e-3", "augment.hflip=false", "augment.rotation=0",
                              "augment.color_jitter=0", "features.views=1", "runtime.save_every_s=0", *overrides])


@pytest.fixture(scope="module")
def data():
    return toy_data()


@pytest.fixture(scope="module")
def fold(data):
    return make_folds(data.subjects)[0]


def _features(cfg, data, tmp_path):
    torch.manual_seed(cfg.runtime.seed)
    model = build_model(cfg, MFED_TASKS)
    return model, cached_features(cfg, data, model.backbone, tmp_path / "cache", progress=False)


def test_cached_features_give_the_same_predictions_as_the_image_path(data, fold, tmp_path):
    cfg = toy_cfg("model.mode=frozen", "features.precision=fp32")  # bf16 extraction differs by ~1e-2
    model, feats = _features(cfg, data, tmp_path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    m_cache = fit_fold(cfg, fold, data, tmp_path / "cache_run", features=feats, model=model, progress=False)
    img_model = build_model(cfg, MFED_TASKS)
    img_model.load_state_dict(state)  # same initial weights, backbone included
    m_img = fit_fold(cfg, fold, data, tmp_path / "img_run", model=img_model, progress=False)
    a = pd.read_csv(tmp_path / "cache_run" / "predictions.csv")
    b = pd.read_csv(tmp_path / "img_run" / "predictions.csv")
    prob_cols = [c for c in a if "_p_" in c]
    assert len(prob_cols) == 12
    np.testing.assert_allclose(a[prob_cols].to_numpy(), b[prob_cols].to_numpy(), atol=2e-3)
    assert (a.true_pred == b.true_pred).mean() > 0.95
    la, lb = pd.read_csv(tmp_path / "cache_run" / "log.csv"), pd.read_csv(tmp_path / "img_run" / "log.csv")
    np.testing.assert_allclose(la["loss"], lb["loss"], rtol=1e-3)
    assert m_cache["best_epoch"] == m_img["best_epoch"]


def test_feature_cache_is_reused_and_its_key_checked(data, tmp_path):
    cfg = toy_cfg("model.mode=frozen", "augment.hflip=true", "features.views=3")
    model, f1 = _features(cfg, data, tmp_path)
    assert f1.shape[:2] == (3, len(data))
    assert torch.equal(f1[0], cached_features(cfg, data, model.backbone, tmp_path / "cache", progress=False)[0])
    files = list((tmp_path / "cache").glob("*.pt"))
    assert len(files) == 1
    # a different backbone state must not reuse the file
    param = next(model.backbone.parameters())
    original = param.detach().clone()
    with torch.no_grad():
        param.add_(1.0)
    f2 = cached_features(cfg, data, model.backbone, tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2
    assert not torch.allclose(f1[0], f2[0])
    # a tampered file whose stored key does not match is not trusted
    stored = torch.load(files[0], weights_only=True)
    stored["key"]["views"] = 99
    torch.save(stored, files[0])
    with torch.no_grad():
        param.copy_(original)
    f3 = cached_features(cfg, data, model.backbone, tmp_path / "cache", progress=False)
    assert torch.load(files[0], weights_only=True)["key"]["views"] == 3  # extracted again and rewritten
    torch.testing.assert_close(f3, f1)


PLAIN = ["optim.name=adamw", "optim.schedule=cosine", "optim.warmup_epochs=1", "optim.grad_clip=1.0"]


@pytest.mark.parametrize("extra", [[], PLAIN], ids=["stacked", "plain"])
def test_kill_and_resume_matches_an_uninterrupted_run(data, fold, tmp_path, extra):
    """Both training paths (the stacked head with Adam; the plain path with AdamW, a warm-up + cosine schedule and
    clipping) resume from a kill exactly where an uninterrupted run would be."""
    cfg = toy_cfg("model.mode=finetune", "augment.hflip=true", "augment.color_jitter=0.2", *extra)
    full = fit_fold(cfg, fold, data, tmp_path / "full", progress=False)

    def kill(epoch, row):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_fold(cfg, fold, data, tmp_path / "killed", progress=False, on_epoch_end=kill)
    assert (tmp_path / "killed" / "state.pt").is_file() and not (tmp_path / "killed" / "metrics.json").exists()
    resumed = fit_fold(cfg, fold, data, tmp_path / "killed", progress=False)
    assert not (tmp_path / "killed" / "state.pt").exists()
    assert resumed["true"] == full["true"] and resumed["best_epoch"] == full["best_epoch"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "full" / "log.csv").drop(columns="seconds"),
                                  pd.read_csv(tmp_path / "killed" / "log.csv").drop(columns="seconds"))
    # a finished fold is never recomputed
    mtime = (tmp_path / "full" / "metrics.json").stat().st_mtime_ns
    again = fit_fold(cfg, fold, data, tmp_path / "full", progress=False)
    assert again == json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert (tmp_path / "full" / "metrics.json").stat().st_mtime_ns == mtime


def test_same_seed_same_metrics_other_seed_differs(data, fold, tmp_path):
    cfg = toy_cfg("model.mode=frozen", "features.cache=never")
    a = fit_fold(cfg, fold, data, tmp_path / "a", progress=False)
    b = fit_fold(cfg, fold, data, tmp_path / "b", progress=False)
    assert a == b
    la, lb = (pd.read_csv(tmp_path / x / "log.csv").drop(columns="seconds") for x in "ab")
    pd.testing.assert_frame_equal(la, lb)
    fit_fold(toy_cfg("model.mode=frozen", "runtime.seed=5"), fold, data, tmp_path / "c", progress=False)
    lc = pd.read_csv(tmp_path / "c" / "log.csv").drop(columns="seconds")
    assert not np.allclose(la["loss"], lc["loss"])


def test_heads_learn_both_tasks_and_early_stopping_restores_the_best_epoch(tmp_path):
    data = toy_data(per_subject=48)
    fold = make_folds(data.subjects)[0]
    cfg = toy_cfg("model.mode=finetune", "model.backbone=tiny_resnet", "optim.epochs=25", "optim.patience=5")
    m = fit_fold(cfg, fold, data, tmp_path / "run", progress=False)
    assert m["true"]["accuracy"] > 0.4 and m["disguised"]["accuracy"] > 0.4  # chance is 1/6
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    best = log["val_true_acc"].max()
    assert log.loc[m["best_epoch"] - 1, "val_true_acc"] == best
    assert m["epochs_run"] == len(log) and (m["epochs_run"] == 25 or m["epochs_run"] - m["best_epoch"] == 5)
    assert {"loss", "true_ce", "disguised_ce", "hsic", "val_true_acc", "val_disguised_acc"} <= set(log.columns)


def test_a_corrupt_or_crafted_resume_state_is_refused_cleanly(data, fold, tmp_path):
    """state.pt is loaded as weights only: a pickle that would run code is refused, and so is a truncated file,
    each with one message naming the file."""
    import pickle

    cfg = toy_cfg()
    out = tmp_path / "fold"
    out.mkdir()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(out / "state.pt", "wb") as f:
        pickle.dump({"head": Evil()}, f)
    with pytest.raises(UnmaskError, match="cannot resume from .*state.pt: truncated, corrupt or not an unmask"):
        fit_fold(cfg, fold, data, out, progress=False)
    assert not marker.exists()  # the crafted file ran nothing
    torch.save({"head": {}}, out / "state.pt")
    (out / "state.pt").write_bytes((out / "state.pt").read_bytes()[:40])  # cut short
    with pytest.raises(UnmaskError, match="delete it to start that fold again"):
        fit_fold(cfg, fold, data, out, progress=False)


def test_mixup_mixes_each_folds_inputs_and_its_loss_with_one_lambda(monkeypatch):
    """optim.mixup: the heads see lam * x + (1 - lam) * x[perm] (perm within each fold's valid rows, drawn from the
    fold's generator) and every loss term is lam * L(y) + (1 - lam) * L(y[perm])."""
    from types import SimpleNamespace

    import numpy as np

    import unmask.train.engine as E
    import unmask.train.mixing as mixing

    lam = 0.3
    monkeypatch.setattr(mixing.np.random, "default_rng", lambda seed: SimpleNamespace(beta=lambda a, b: lam))
    torch.manual_seed(0)
    head = torch.nn.Linear(4, 3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    task = SimpleNamespace(name="emotion")

    def objective(out, targets, mask):  # per fold: mean CE over its valid rows
        ce = torch.nn.functional.cross_entropy(out.flatten(0, 1), targets["emotion"].flatten(), reduction="none")
        ce = (ce.view(mask.shape) * mask).sum(1) / mask.sum(1)
        return {"loss": ce, "emotion_ce": ce, "sigma": None}

    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    copies = [torch.Generator().manual_seed(s) for s in (1, 2)]
    fake = SimpleNamespace(cfg=SimpleNamespace(optim=SimpleNamespace(mixup=0.4, cutmix=0.0, mix_switch=0.5)),
                           members=[SimpleNamespace(gen=g) for g in gens], stack=SimpleNamespace(forward_head=head),
                           objective=objective, model=SimpleNamespace(tasks=[task]),
                           data=SimpleNamespace(labels={"emotion": labels}), device=torch.device("cpu"))
    safe = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 0]])  # fold 2 has 3 valid rows, its last slot is padding
    counts, mask = torch.tensor([4, 3]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    x = torch.randn(2, 4, 4)
    fake.draw_mix = lambda *a, **k: E.Trainer.draw_mix(fake, *a, **k)  # the Trainer's own methods on the fake
    fake.mixed_loss = lambda *a, **k: E.Trainer.mixed_loss(fake, *a, **k)
    terms = E.Trainer.mixed_terms(fake, x, safe, counts, mask)
    assert terms["sigma"] is None
    for f, (g, c) in enumerate(zip(copies, counts.tolist())):
        torch.randint(2**31 - 1, (1,), generator=g)  # the draw that seeds lambda
        perm = torch.arange(4)
        perm[:c] = torch.randperm(c, generator=g)
        out = head(lam * x[f] + (1 - lam) * x[f][perm])
        m = mask[f]
        def ce(y, out=out, m=m):
            return torch.nn.functional.cross_entropy(out[m], y[m])

        expected = lam * ce(labels[safe[f]]) + (1 - lam) * ce(labels[safe[f][perm]])
        assert torch.allclose(terms["loss"][f], expected, atol=1e-6)
        assert perm[c:].tolist() == list(range(c, 4))  # padding never mixes in
    assert np.isfinite(terms["loss"].detach().numpy()).all()


@pytest.mark.parametrize("mixup,coin", [(0.0, None), (0.8, 0.2), (0.8, 0.7)])
def test_cutmix_replaces_a_span_of_frames_and_mixes_the_loss_by_its_share(monkeypatch, mixup, coin):
    """optim.cutmix: frames [start, start + span) of each clip come from the permuted clip of the fold's batch, span =
    round((1 - lam) T), and every loss term is (1 - span/T) L(y) + span/T L(y[perm]); with mixup also on, a coin
    below optim.mix_switch (0.5) picks cutmix, else the batch is mixed up as before."""
    from types import SimpleNamespace

    import unmask.train.engine as E
    import unmask.train.mixing as mixing

    lam, start = 0.6, 1  # T = 5: span = round(0.4 * 5) = 2 frames, [1, 3)
    calls = []

    class Rng:
        def __init__(self, seed):
            pass

        def random(self):
            calls.append("random")
            return coin

        def beta(self, a, b):
            calls.append(("beta", a))
            return lam

        def integers(self, lo, hi):
            calls.append(("integers", lo, hi))
            return start

    monkeypatch.setattr(mixing.np.random, "default_rng", Rng)
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(5 * 3, 4))  # [B, T=5, D=3] -> 4 classes
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    task = SimpleNamespace(name="emotion")

    def objective(out, targets, mask):
        ce = torch.nn.functional.cross_entropy(out.flatten(0, 1), targets["emotion"].flatten(), reduction="none")
        ce = (ce.view(mask.shape) * mask).sum(1) / mask.sum(1)
        return {"loss": ce, "emotion_ce": ce}

    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    copies = [torch.Generator().manual_seed(s) for s in (3, 4)]
    fake = SimpleNamespace(cfg=SimpleNamespace(optim=SimpleNamespace(mixup=mixup, cutmix=1.0, mix_switch=0.5)),
                           members=[SimpleNamespace(gen=g) for g in gens],
                           stack=SimpleNamespace(forward_head=lambda x: head(x.flatten(0, 1)).view(2, 3, 4)),
                           objective=objective, model=SimpleNamespace(tasks=[task]),
                           data=SimpleNamespace(labels={"emotion": labels}), device=torch.device("cpu"))
    safe, counts = torch.tensor([[0, 1, 2], [3, 4, 5]]), torch.tensor([3, 3])
    mask = torch.ones(2, 3, dtype=torch.bool)
    x = torch.randn(2, 3, 5, 3)  # [F, B, T, D]
    fake.draw_mix = lambda *a, **k: E.Trainer.draw_mix(fake, *a, **k)  # the Trainer's own methods on the fake
    fake.mixed_loss = lambda *a, **k: E.Trainer.mixed_loss(fake, *a, **k)
    terms = E.Trainer.mixed_terms(fake, x, safe, counts, mask)
    cut = mixup == 0 or coin < 0.5
    for f, g in enumerate(copies):
        torch.randint(2**31 - 1, (1,), generator=g)
        perm = torch.randperm(3, generator=g)
        if cut:
            mixed = x[f].clone()
            mixed[:, 1:3] = x[f][perm][:, 1:3]  # the span from the permuted clip
            share = 1 - 2 / 5
        else:
            mixed, share = lam * x[f] + (1 - lam) * x[f][perm], lam
        out = head(mixed)
        def ce(y, out=out):
            return torch.nn.functional.cross_entropy(out, y)

        expected = share * ce(labels[safe[f]]) + (1 - share) * ce(labels[safe[f][perm]])
        assert torch.allclose(terms["loss"][f], expected, atol=1e-6)
    if cut:
        assert ("beta", 1.0) in calls and ("integers", 0, 4) in calls  # Beta(cutmix); starts 0..T-span
    else:
        assert ("beta", 0.8) in calls and not any(isinstance(c, tuple) and c[0] == "integers" for c in calls)


def test_cutmix_needs_clips():
    from unmask.config import load_config

    with pytest.raises(UnmaskError, match="optim.cutmix.*needs clips"):
        load_config("dsid_synth", ["optim.cutmix=1.0"])
