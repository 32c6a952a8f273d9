"""MEDN: orthogonality loss, SEViT token selection, the masked AU loss, ablation switches, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from unmask.errors import UnmaskError
from unmask.losses import create_loss, list_losses
from unmask.losses.orthogonal import orthogonality
from unmask.models import create_model, list_models
from unmask.models.medn import SEViT, select_tokens
from unmask.synth.micro import micro_tasks

TASKS = micro_tasks()


def _model(**kw):
    torch.manual_seed(0)
    return create_model("medn", tasks=TASKS, backbone="tiny_vit", img_size=32, motion_dim=16, emotion_dim=16,
                        fusion_dim=16, **kw)


def test_orthogonality_is_zero_for_orthogonal_features_and_positive_otherwise():
    torch.manual_seed(0)
    a = torch.randn(16, 6)
    a = a - a.mean(0)
    q, _ = torch.linalg.qr(a)  # orthonormal, centred columns
    x, y = q[:, :3] * torch.tensor([2.0, 0.5, 3.0]), q[:, 3:] + 5.0  # scale and offset do not matter
    assert float(orthogonality(x, y)) == pytest.approx(0.0, abs=1e-10)
    assert float(orthogonality(x, x)) > 0.3  # a set is not orthogonal to itself
    z = torch.randn(16, 3)
    assert float(orthogonality(x, y + 0.5 * x)) > 0.05 and float(orthogonality(z, x @ torch.randn(3, 3) + z)) > 0
    # per-sample cos^2: zero for sample-wise orthogonal vectors
    u = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[0.0, 3.0], [1.0, 0.0]])
    assert float(orthogonality(u, v, "cos2")) == pytest.approx(0.0)
    assert float(orthogonality(u, u, "cos2")) == pytest.approx(1.0)
    assert {"orthogonal", "medn"} <= set(list_losses())


def test_token_selection_keeps_exactly_the_top_k_at_each_rate():
    torch.manual_seed(0)
    tokens = torch.randn(2, 3, 10, 4)
    scores = torch.rand(2, 3, 10)
    for rho in (0.25, 0.5, 0.75, 1.0):
        k = math.ceil(rho * 10)
        kept, idx = select_tokens(tokens, scores, k)
        assert kept.shape == (2, 3, k, 4)
        for b in range(2):
            for t in range(3):
                assert set(idx[b, t].tolist()) == set(scores[b, t].argsort(descending=True)[:k].tolist())
                assert idx[b, t].tolist() == sorted(idx[b, t].tolist())  # original order kept
                assert torch.equal(kept[b, t], tokens[b, t, idx[b, t]])
    # SEViT scores tokens by their change over time: a token that never changes is never kept at rate 0.1
    sevit = SEViT(4, 8, rates=(0.1,), score="onset")
    frames = torch.zeros(1, 4, 10, 4)
    frames[:, 1:, 7] = torch.arange(1, 4).float()[:, None]  # token 7 changes from the onset frame on
    assert sevit.token_scores(frames)[0, 1:].argmax(-1).tolist() == [7, 7, 7]


def test_au_loss_is_masked_where_a_dataset_has_no_aus():
    model = _model()
    obj = create_loss("medn", tasks=model.tasks, au_weight=1.0, orth_weight=0.0)
    torch.manual_seed(1)
    out = {"emotion_logits": torch.randn(4, 4), "aus_logits": torch.randn(4, 8),
           "motion_features": torch.randn(4, 16), "emotion_features": torch.randn(4, 16)}
    aus = torch.randint(0, 2, (4, 8)).float()
    labelled = obj(out, {"emotion": torch.tensor([0, 1, 2, 3]), "aus": aus})
    aus_smic = aus.clone()
    aus_smic[2:] = float("nan")  # SMIC rows: not annotated
    masked = obj(out, {"emotion": torch.tensor([0, 1, 2, 3]), "aus": aus_smic})
    only_first = obj({k: v[:2] for k, v in out.items()}, {"emotion": torch.tensor([0, 1]), "aus": aus[:2]})
    assert float(masked["aus_bce"]) == pytest.approx(float(only_first["aus_bce"]))
    assert float(masked["aus_bce"]) != pytest.approx(float(labelled["aus_bce"]))
    none = obj(out, {"emotion": torch.tensor([0, 1, 2, 3]), "aus": torch.full((4, 8), float("nan"))})
    assert float(none["aus_bce"]) == 0.0 and float(none["loss"]) == pytest.approx(float(none["emotion_ce"]))
    # the terms are gated by their weights: orth_weight=0 never computes it
    assert float(obj(out, {"emotion": torch.tensor([0, 1, 2, 3]), "aus": aus})["orth"]) == 0.0
    with_orth = create_loss("medn", tasks=model.tasks, orth_weight=0.5)(out, {"emotion": torch.tensor([0, 1, 2, 3]),
                                                                            "aus": aus})
    assert float(with_orth["orth"]) > 0


def test_medn_outputs_and_ablation_switches():
    assert "medn" in list_models()
    x = torch.randn(3, 5, 3, 32, 32)  # 4 frames + the flow
    model = _model().eval()
    out = model(x)
    assert out["emotion_logits"].shape == (3, 4) and out["aus_logits"].shape == (3, 8)
    assert out["motion_features"].shape == (3, 16) and out["gate"].shape == (3,)
    assert [t.name for t in model.tasks] == ["emotion", "aus"]
    motion = _model(branches="motion").eval()
    assert motion.backbone.sevit is None and float(motion(x)["emotion_features"].detach().abs().sum()) == 0
    assert [t.name for t in _model(au_head=False).tasks] == ["emotion"]
    for kw in ({"fusion": "cross_attention"}, {"fusion": "sum"}, {"fusion": "concat"}, {"rates": [1.0]},
               {"rates": [0.5]}, {"share_rates": False, "combine": "concat", "fuse_dropped": True},
               {"branches": "emotion"}):
        assert _model(**kw).eval()(x)["emotion_logits"].shape == (3, 4)
    with pytest.raises(UnmaskError, match="unknown fusion"):
        _model(fusion="mlp")
    with pytest.raises(UnmaskError, match=r"clip_flow"):
        model(torch.randn(3, 3, 32, 32))
    with pytest.raises(UnmaskError, match="au_task='emotion' is not a multi-label task"):
        _model(au_task="emotion")


def test_a_checkpointed_medn_rebuilds_and_predicts_the_same(tmp_path):
    from unmask.models.weights import restoring_checkpoint

    model = _model(fusion="cross_attention").eval()
    x = torch.randn(2, 5, 3, 32, 32)
    want = model(x)
    torch.save({"model_args": model.model_args, "state": model.state_dict()}, tmp_path / "m.pt")
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    with restoring_checkpoint():
        again = create_model(**ckpt["model_args"])
    again.load_state_dict(ckpt["state"])
    got = again.eval()(x)
    for k in ("emotion_logits", "aus_logits", "features"):
        assert torch.allclose(want[k], got[k], atol=1e-6)


def test_composite_scores_per_source_dataset_from_pooled_predictions():
    import pandas as pd

    from unmask.experiments.medn import format_table, per_source

    preds = pd.DataFrame({
        "subject": ["casme2_sub01", "casme2_sub02", "samm_006", "samm_007", "smic_s1", "smic_s2"],
        "emotion": ["negative", "positive", "negative", "surprise", "positive", "negative"],
        "emotion_pred": ["negative", "positive", "surprise", "surprise", "negative", "negative"]})
    got = per_source(preds)
    assert got["casme2"] == {"n": 2, "uf1": 1.0, "uar": 1.0}
    assert got["samm"]["uar"] == 0.5 and got["smic"]["n"] == 2
    assert per_source(preds.assign(subject=["s01"] * 6)) == {}
    row = {"variant": "medn", "uf1": 0.5, "uf1_ci": [0.4, 0.6], "uar": 0.5, "uar_ci": [0.4, 0.6], "au_f1": None,
           "per_source": got}
    table = format_table([row], quick=False)
    assert "| medn | 1.000 / 1.000 (2) | 0.333 / 0.500 (2) | 0.333 / 0.500 (2) |" in table and "HTNet (2023) | 0.8603" in table


def test_reproduce_medn_refuses_bad_requests_before_any_work(tmp_path, capsys):
    from unmask.cli import main

    assert main(["reproduce", "medn", "--quick", "--variants", "medn,bogus", "--out", str(tmp_path / "r")]) == 2
    assert "unknown MEDN variant(s) bogus; known: medn, motion_only" in capsys.readouterr().err
    assert main(["reproduce", "medn", "--out", str(tmp_path / "r")]) == 2
    assert "needs --prepared DIR" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
