"""DSIDObjective: eq. 1 of the paper, terms gated by their weights and by what the model outputs."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import math

import pytest
import torch

import unmask.losses.objective as objective_module
from unmask.emotions import MFED_TASKS
from unmask.errors import UnmaskError
from unmask.losses import DSIDObjective, hsic


def _outputs(seed=0, b=8, d=5):
    g = torch.Generator().manual_seed(seed)
    return {
        "true_logits": torch.randn(b, 6, generator=g, requires_grad=True),
        "disguised_logits": torch.randn(b, 6, generator=g, requires_grad=True),
        "true_features": torch.randn(b, d, generator=g, requires_grad=True),
        "disguised_features": torch.randn(b, d, generator=g, requires_grad=True),
    }


def _labels(seed=1, b=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 6, (b,), generator=g), torch.randint(0, 6, (b,), generator=g)


def hand_ce(logits, labels):
    total = 0.0
    for row, label in zip(logits.tolist(), labels.tolist()):
        log_z = math.log(sum(math.exp(v) for v in row))
        total += log_z - row[label]
    return total / len(labels)


def test_values_equal_hand_computation():
    out, (t, d) = _outputs(), _labels()
    objective = DSIDObjective(MFED_TASKS, alpha=0.5, beta=0.7)
    terms = objective(out, {"true": t, "disguised": d})
    true_ce, disguised_ce = hand_ce(out["true_logits"], t), hand_ce(out["disguised_logits"], d)
    h, sigmas = hsic(out["true_features"], out["disguised_features"], estimator="biased", return_sigma=True)
    assert float(terms["true_ce"]) == pytest.approx(true_ce, rel=1e-5)
    assert float(terms["disguised_ce"]) == pytest.approx(disguised_ce, rel=1e-5)
    assert float(terms["hsic"]) == pytest.approx(float(h.detach()), rel=1e-6)
    assert float(terms["loss"].detach()) == pytest.approx(true_ce + 0.7 * disguised_ce + 0.5 * float(h.detach()), rel=1e-5)
    assert terms["hsic_sigma"] == pytest.approx(sum(sigmas) / 2)
    assert set(terms) == {"loss", "true_ce", "disguised_ce", "hsic", "hsic_sigma"}


def test_estimator_kernel_and_sigma_are_passed_through():
    out, (t, d) = _outputs(), _labels()
    terms = DSIDObjective(MFED_TASKS, alpha=1.0, estimator="paper", kernel="linear")(out, {"true": t, "disguised": d})
    expected = hsic(out["true_features"], out["disguised_features"], estimator="paper", kernel="linear")
    assert float(terms["hsic"]) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert terms["hsic_sigma"] is None  # linear kernel has no bandwidth
    terms = DSIDObjective(MFED_TASKS, alpha=1.0, estimator="unbiased", sigma=0.8)(out, {"true": t, "disguised": d})
    assert terms["hsic_sigma"] == pytest.approx(0.8)
    expected = hsic(out["true_features"], out["disguised_features"], estimator="unbiased", sigma=0.8)
    assert float(terms["hsic"]) == pytest.approx(float(expected.detach()), rel=1e-6)


def test_alpha_zero_does_not_call_hsic(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("hsic called with alpha=0")

    monkeypatch.setattr(objective_module, "hsic", boom)
    out, (t, d) = _outputs(), _labels()
    terms = DSIDObjective(MFED_TASKS, alpha=0.0, beta=1.0)(out, {"true": t, "disguised": d})
    assert float(terms["hsic"]) == 0.0 and terms["hsic_sigma"] is None
    assert float(terms["loss"].detach()) == pytest.approx(float(terms["true_ce"] + terms["disguised_ce"]), rel=1e-6)


def test_beta_zero_skips_disguised_term():
    out, (t, d) = _outputs(), _labels()
    terms = DSIDObjective(MFED_TASKS, alpha=0.0, beta=0.0)(out, {"true": t, "disguised": d})
    assert float(terms["disguised_ce"]) == 0.0
    assert float(terms["loss"].detach()) == pytest.approx(float(terms["true_ce"]))


def test_single_task_models_train_with_the_tasks_loss():
    """A single-stream model predicts one task: the registry's ``tasks`` loss is its cross-entropy alone; the
    DSID objective needs two tasks and says so."""
    from unmask.losses import create_loss

    out, (_, d) = _outputs(), _labels()
    disguised_only = {"disguised_logits": out["disguised_logits"], "disguised_features": out["disguised_features"]}
    terms = create_loss("tasks", tasks=MFED_TASKS[1:])(disguised_only, {"disguised": d})
    assert float(terms["loss"].detach()) == pytest.approx(hand_ce(out["disguised_logits"], d), rel=1e-5)
    assert set(terms) == {"loss", "disguised_ce"}
    with pytest.raises(UnmaskError, match="two single-label tasks"):
        DSIDObjective(MFED_TASKS[:1])


def test_unlabelled_clips_count_for_no_term():
    """A clip without a label (-1) is left out of its task's cross-entropy, not treated as class 0."""
    out, (t, d) = _outputs(), _labels()
    partial = t.clone()
    partial[:3] = -1
    terms = DSIDObjective(MFED_TASKS, alpha=0.0)(out, {"true": partial, "disguised": d})
    assert float(terms["true_ce"]) == pytest.approx(hand_ce(out["true_logits"][3:], t[3:]), rel=1e-5)


def test_backward_reaches_every_input():
    out, (t, d) = _outputs(), _labels()
    DSIDObjective(MFED_TASKS)(out, {"true": t, "disguised": d})["loss"].backward()
    for key, tensor in out.items():
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all(), key
        assert tensor.grad.abs().sum() > 0, key


def test_backward_through_dsid_head():
    from unmask.models import create_model

    model = create_model("dsid", backbone="tiny_vit", adapter_dim=16, branch_dim=8).train()
    features = torch.randn(6, model.backbone.num_features)
    t, d = _labels(b=6)
    DSIDObjective(MFED_TASKS)(model.forward_head(features), {"true": t, "disguised": d})["loss"].backward()
    assert model.true_adapter[0].weight.grad is not None
    assert model.masked_adapter[0].weight.grad.abs().sum() > 0


def test_errors():
    with pytest.raises(UnmaskError, match="biased, unbiased, paper"):
        DSIDObjective(MFED_TASKS, estimator="nope")
    with pytest.raises(UnmaskError, match=">= 0"):
        DSIDObjective(MFED_TASKS, alpha=-1)
    with pytest.raises(UnmaskError, match="unknown task 'felt'"):
        DSIDObjective(MFED_TASKS, true_task="felt")
