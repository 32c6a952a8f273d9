"""Folds trained at once as one stack: each fold's result equals training it alone; stacks resume exactly."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from test_engine import toy_cfg, toy_data
from unmask.emotions import MFED_TASKS
from unmask.errors import UnmaskError
from unmask.losses import DSIDObjective, hsic
from unmask.train.engine import build_model, fit_fold, fit_folds, fold_seed
from unmask.train.features import cached_features
from unmask.train.protocols import make_folds
from unmask.train.stacked import StackedAdam, StackedHead, head_names, init_head


@pytest.fixture(scope="module")
def ragged():
    """5 subjects with different clip counts, so the folds' training sets (and last batches) differ in size."""
    data = toy_data(n_subjects=5, per_subject=20, seed=3)
    keep = [i for i, s in enumerate(data.subjects) if not (s == "s1" and i % 20 >= 13) and not (s == "s3" and i % 20 >= 17)]
    from unmask.data.datasets import FrameData
    return FrameData(clip_ids=[data.clip_ids[i] for i in keep], subjects=[data.subjects[i] for i in keep],
                     images=data.images[keep], tasks=data.tasks,
                     labels={k: v[keep] for k, v in data.labels.items()}, paradigm="apex", source={"toy": "ragged"})


def _cfg(*extra):
    # dropout on, 2 views, a batch size that leaves ragged last batches (one of them a single sample)
    return toy_cfg("model.mode=frozen", "features.precision=fp32", "features.views=2", "augment.hflip=true",
                   "optim.batch_size=11", "optim.epochs=12", "optim.patience=2", "model.args.dsid.dropout=0.3", *extra)


def _features(cfg, data, tmp_path):
    torch.manual_seed(cfg.runtime.seed)
    model = build_model(cfg, MFED_TASKS)
    return cached_features(cfg, data, model.backbone, tmp_path / "cache", progress=False)


def _probs(path):
    df = pd.read_csv(path / "predictions.csv")
    return df[[c for c in df if "_p_" in c]].to_numpy()


def test_a_fold_in_a_stack_equals_the_fold_alone(ragged, tmp_path):
    cfg = _cfg()
    feats = _features(cfg, ragged, tmp_path)
    folds = make_folds(ragged.subjects)
    sizes = {len(ragged.subset(f.train)) for f in folds}
    assert len(sizes) > 1  # the point of the fixture: ragged folds
    stacked = fit_folds(cfg, folds, ragged, [tmp_path / "stack" / f.name for f in folds], features=feats,
                        progress=False)
    for fold, m in zip(folds, stacked):
        alone = fit_fold(cfg, fold, ragged, tmp_path / "alone" / fold.name, features=feats, progress=False)
        assert alone["best_epoch"] == m["best_epoch"] and alone["epochs_run"] == m["epochs_run"]
        np.testing.assert_allclose(_probs(tmp_path / "stack" / fold.name), _probs(tmp_path / "alone" / fold.name),
                                   atol=1e-4)
        la = pd.read_csv(tmp_path / "stack" / fold.name / "log.csv").drop(columns="seconds")
        lb = pd.read_csv(tmp_path / "alone" / fold.name / "log.csv").drop(columns="seconds")
        pd.testing.assert_frame_equal(la, lb, rtol=1e-4)
    # folds stopped at different epochs (early stopping per fold, inside one stack)
    assert len({m["epochs_run"] for m in stacked}) > 1


def test_killed_stack_resumes_to_the_same_results(ragged, tmp_path):
    cfg = _cfg("optim.patience=8")
    feats = _features(cfg, ragged, tmp_path)
    folds = make_folds(ragged.subjects)[:3]
    full = fit_folds(cfg, folds, ragged, [tmp_path / "full" / f.name for f in folds], features=feats, progress=False)
    calls = []

    def kill(epoch, row):
        calls.append(epoch)
        if epoch == 4 and len(calls) > 3 * 3:  # every fold finished epoch 3, the first has finished 4
            raise KeyboardInterrupt

    dirs = [tmp_path / "killed" / f.name for f in folds]
    with pytest.raises(KeyboardInterrupt):
        fit_folds(cfg, folds, ragged, dirs, features=feats, progress=False, on_epoch_end=kill)
    assert all((d / "state.pt").is_file() for d in dirs)
    resumed = fit_folds(cfg, folds, ragged, dirs, features=feats, progress=False)
    # same decisions; probabilities equal up to float rounding (which folds share a batched kernel call differs)
    assert [(m["best_epoch"], m["epochs_run"]) for m in resumed] == [(m["best_epoch"], m["epochs_run"]) for m in full]
    for f in folds:
        np.testing.assert_allclose(_probs(tmp_path / "full" / f.name), _probs(tmp_path / "killed" / f.name), atol=1e-4)
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "full" / f.name / "log.csv").drop(columns="seconds"),
                                      pd.read_csv(tmp_path / "killed" / f.name / "log.csv").drop(columns="seconds"),
                                      rtol=1e-4)


def test_stacked_head_matches_the_module_and_round_trips_states():
    cfg = toy_cfg("model.mode=frozen", "model.args.dsid.dropout=0.0")
    model = build_model(cfg, MFED_TASKS).eval()
    names = head_names(model)
    stack = StackedHead(model, 3)
    states = []
    for f in range(3):
        init_head(model, seed=f)
        states.append({k: v.clone() for k, v in model.state_dict().items() if k in names})
        stack.load_member(f, states[-1])
    assert not any(k.startswith("backbone") for k, _ in stack.named_parameters())  # the backbone is shared, not copied
    for f in range(3):
        got = stack.member_state(f)
        assert got.keys() == states[f].keys()
        assert all(torch.equal(got[k], states[f][k]) for k in got)
    x = torch.randn(3, 7, model.backbone.num_features)
    stack.eval()
    out = stack.forward_head(x)
    for f in range(3):
        model.load_state_dict({**model.state_dict(), **states[f]})
        ref = model.forward_head(x[f])
        for k in ("true_logits", "disguised_logits"):
            torch.testing.assert_close(out[k][f], ref[k], atol=1e-5, rtol=1e-5)
    # selecting members keeps their weights
    stack.select([2, 0])
    assert all(torch.equal(stack.member_state(0)[k], states[2][k]) for k in names)
    assert all(torch.equal(stack.member_state(1)[k], states[0][k]) for k in names)


def test_one_training_step_equals_torch_modules_and_adam():
    """Same batch, same weights: the stacked step == nn.Module + torch.optim.Adam, member by member."""
    cfg = toy_cfg("model.mode=frozen", "model.args.dsid.dropout=0.0")
    model = build_model(cfg, MFED_TASKS)
    names = head_names(model)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, model.backbone.num_features, generator=g)
    t, d = torch.randint(0, 6, (2, 9), generator=g), torch.randint(0, 6, (2, 9), generator=g)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False  # member 1 has 6 rows
    stack = StackedHead(model, 2)
    states = []
    for f in range(2):
        init_head(model, seed=10 + f)
        states.append({k: v.clone() for k, v in model.state_dict().items() if k in names})
        stack.load_member(f, states[-1])
    objective = DSIDObjective(MFED_TASKS, alpha=0.5, beta=1.0)
    opt = StackedAdam(stack.named_parameters(), lr=1e-2, weight_decay=5e-4)
    stack.train()
    for _ in range(3):
        stack.set_batch(mask, ())
        opt.zero_grad()
        objective(stack.forward_head(x), {"true": t, "disguised": d}, mask=mask)["loss"].sum().backward()
        opt.step([True, True])
    for f in range(2):
        model.load_state_dict({**model.state_dict(), **states[f]})
        model.train()
        params = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
        ref_opt = torch.optim.Adam(params, lr=1e-2, weight_decay=5e-4)
        n = int(mask[f].sum())
        for _ in range(3):
            ref_opt.zero_grad()
            objective(model.forward_head(x[f, :n]), {"true": t[f, :n], "disguised": d[f, :n]})["loss"].backward()
            ref_opt.step()
        got = stack.member_state(f)
        # Adam moves a weight by ~lr whatever its gradient's size, so float rounding (thread count, kernel) in a
        # near-zero gradient can show as ~1e-5 after 3 steps of lr 1e-2: the tolerance is 1% of one step
        for k, v in model.state_dict().items():
            if k in names:
                torch.testing.assert_close(got[k].float(), v.float(), atol=1e-4, rtol=1e-4)


def test_inactive_members_are_left_untouched():
    cfg = toy_cfg("model.mode=frozen")
    model = build_model(cfg, MFED_TASKS)
    stack = StackedHead(model, 2)
    for f in range(2):
        init_head(model, seed=f)
        stack.load_member(f, {k: v for k, v in model.state_dict().items() if k in head_names(model)})
    before = stack.member_state(1)
    opt = StackedAdam(stack.named_parameters(), lr=1e-2, weight_decay=0.0)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0] = True
    stack.train()
    stack.set_batch(mask, (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)))
    x = torch.randn(2, 8, model.backbone.num_features)
    y = torch.zeros(2, 8, dtype=torch.long)
    DSIDObjective(MFED_TASKS)(stack.forward_head(x), {"true": y, "disguised": y}, mask=mask)["loss"].sum().backward()
    opt.step([True, False])
    after = stack.member_state(1)
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics
    assert not torch.equal(stack.member_state(0)["masked_adapter.0.weight"], before["masked_adapter.0.weight"])


def test_masked_hsic_equals_hsic_on_the_valid_rows():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 12, 5, generator=g), torch.randn(3, 12, 4, generator=g)
    y[0] = x[0, :, :4] + 0.1 * y[0]  # one dependent member
    counts = [12, 7, 3]
    mask = torch.arange(12)[None] < torch.tensor(counts)[:, None]
    for estimator in ("biased", "unbiased", "paper"):
        yy = y if estimator != "paper" else x + 0.3 * torch.randn(3, 12, 5, generator=g)
        value, (sx, sy) = hsic(x, yy, estimator=estimator, mask=mask, return_sigma=True)
        for f, n in enumerate(counts):
            if n < {"biased": 2, "unbiased": 4, "paper": 1}[estimator]:
                assert value[f] == 0  # too few rows: no term, no error
                continue
            ref, (rx, ry) = hsic(x[f, :n], yy[f, :n], estimator=estimator, return_sigma=True)
            assert float(value[f]) == pytest.approx(float(ref), rel=1e-4, abs=1e-7)
            assert float(sx[f]) == pytest.approx(rx, rel=1e-5) and float(sy[f]) == pytest.approx(ry, rel=1e-5)


def test_a_head_without_a_stacked_form_is_refused_by_name():
    cfg = toy_cfg("model.mode=frozen")
    model = build_model(cfg, MFED_TASKS)
    model.masked_adapter[1] = nn.LayerNorm(model.masked_adapter[0].out_features)
    with pytest.raises(UnmaskError, match=r"masked_adapter\.1.*LayerNorm"):
        StackedHead(model, 2)


def test_parameters_the_loss_does_not_reach_stay_at_their_initial_values(tmp_path):
    """beta = 0: the disguised classifier gets no gradient and no Adam step (weight decay included)."""
    data = toy_data()
    fold = make_folds(data.subjects)[0]
    cfg = toy_cfg("model.mode=frozen", "loss.args.dsid.beta=0", "optim.epochs=3")
    feats = _features(cfg, data, tmp_path)
    fit_fold(cfg, fold, data, tmp_path / "run", features=feats, progress=False)
    model = build_model(cfg, MFED_TASKS)
    init_head(model, seed=fold_seed(cfg.runtime.seed, fold.name))
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["state_dict"]
    for k in ("disguised_classifier.weight", "disguised_classifier.bias"):
        assert torch.equal(saved[k], model.state_dict()[k])
    assert not torch.equal(saved["true_classifier.weight"], model.state_dict()["true_classifier.weight"])


@pytest.mark.parametrize("full", [True, False])  # every row valid (BatchNorm's fast path); padded rows
def test_a_stacked_step_does_not_depend_on_the_thread_count(full):
    """A run's numbers must not depend on threads (nor --jobs, which sets them): the same stacked steps on 1 and
    2 threads give the same weights, bit for bit (torch's fused batch_norm did not: 6e-6 apart at D=512)."""
    cfg = toy_cfg("model.mode=frozen", "model.args.dsid.dropout=0.3", "model.args.dsid.adapter_dim=64",
                  "model.args.dsid.branch_dim=32")
    model = build_model(cfg, MFED_TASKS)
    names = head_names(model)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 32, model.backbone.num_features, generator=g)
    t, d = torch.randint(0, 6, (3, 32), generator=g), torch.randint(0, 6, (3, 32), generator=g)
    mask = torch.ones(3, 32, dtype=torch.bool)
    if not full:
        mask[1, 20:] = False
    objective = DSIDObjective(MFED_TASKS, alpha=0.5, beta=1.0)
    threads, out = torch.get_num_threads(), []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            stack = StackedHead(model, 3)
            for f in range(3):
                init_head(model, seed=f)
                stack.load_member(f, {k: v for k, v in model.state_dict().items() if k in names})
            opt = StackedAdam(stack.named_parameters(), lr=1e-2, weight_decay=5e-4)
            stack.train()
            for _ in range(3):
                stack.set_batch(mask, [torch.Generator().manual_seed(f) for f in range(3)])
                opt.zero_grad()
                objective(stack.forward_head(x), {"true": t, "disguised": d}, mask=mask)["loss"].sum().backward()
                opt.step([True] * 3)
            out.append([stack.member_state(f) for f in range(3)])
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*out):
        assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
