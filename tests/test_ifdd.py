"""IFDD: ISSM split positions, LADM lifting, the context constraint, the model and its baselines."""

from __future__ import annotations

import pytest
import torch

from unmask.errors import UnmaskError
from unmask.losses import create_loss, list_losses
from unmask.losses.ifdd import context_loss
from unmask.models import create_model, list_models
from unmask.models.ifdd import ISSM, LADM, interpolate_time, tokens_to_map
from unmask.tasks import Task

EMO = (Task("emotion", "single", ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")),)


def tiny_ifdd(**kw):
    kw = {"backbone": "tiny_resnet", "frames": 4, "grid": 2, "heads": 4, "img_size": 64, **kw}
    return create_model("ifdd", tasks=EMO, **kw)


def test_registered():
    assert {"ifdd", "frame_average", "temporal_transformer"} <= set(list_models())
    assert "ifdd" in list_losses()


def test_issm_zero_offsets_are_the_even_odd_split_and_positions_are_differentiable():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 4)  # [B, C, T, N]
    issm = ISSM(8, 6, 4)
    with torch.no_grad():
        issm.to_context.weight.zero_()
        issm.to_dynamic.weight.zero_()
    xa, xd, pos = issm(x)
    assert torch.equal(xa, x[:, :, 0::2]) and torch.equal(xd, x[:, :, 1::2])
    assert pos[:, 0].tolist() == [[0.0, 2.0, 4.0]] * 2 and pos[:, 1].tolist() == [[1.0, 3.0, 5.0]] * 2
    # interleaving the two groups back is the identity (the lazy-wavelet split loses nothing)
    merged = torch.stack([xa, xd], 3).flatten(2, 3)
    assert torch.equal(merged, x)
    # the switch "issm off" gives the same fixed split whatever the weights
    off = ISSM(8, 6, 4, enabled=False)
    assert torch.equal(off(x)[0], x[:, :, 0::2])
    # with learned offsets the gradient reaches the offset layers through the interpolation
    issm = ISSM(8, 6, 4)
    xa, xd, pos = issm(x)
    assert not torch.equal(pos[:, 0], torch.tensor([0.0, 2.0, 4.0]).expand(2, 3))
    (xa.square().sum() + xd.sum()).backward()
    assert issm.to_context.weight.grad.abs().sum() > 0 and issm.to_dynamic.weight.grad.abs().sum() > 0
    assert issm.squeeze.weight.grad.abs().sum() > 0


def test_interpolation_between_frames_and_its_gradient():
    x = torch.arange(5.0).view(1, 1, 5, 1) ** 2  # frame t holds t^2
    pos = torch.tensor([[0.25, 2.5, 3.5]], requires_grad=True)
    y = interpolate_time(x, pos)
    assert torch.allclose(y.flatten(), torch.tensor([0.25, 6.5, 12.5]))
    y.sum().backward()
    assert torch.allclose(pos.grad, torch.tensor([[1.0, 5.0, 7.0]]))  # slope of the segment the position is on
    assert interpolate_time(x, torch.tensor([[-3.0, 9.0, 4.0]])).flatten().tolist() == [0.0, 16.0, 16.0]  # clamped


def test_ladm_shapes_order_and_the_lifting_identity():
    torch.manual_seed(0)
    a, d = torch.randn(2, 6, 16), torch.randn(2, 6, 16)
    ladm = LADM(16, 4, drop_path=0.0).eval()
    a2, d3 = ladm(a, d)
    assert a2.shape == a.shape and d3.shape == d.shape
    # update first: A' = A + U(A, D); predict: D' = D - P(D, A') uses the *updated* context
    a1, d1 = ladm.lift(a, d)
    assert torch.allclose(a1, a + ladm.update(a, d), atol=1e-6)
    assert torch.allclose(d1, d - ladm.predict(d, a1), atol=1e-6)
    # the lifting steps invert exactly given the other group: A = A' - U(A, D), D = D' + P(D, A')
    assert torch.allclose(a1 - ladm.update(a, d), a, atol=1e-6)
    assert torch.allclose(d1 + ladm.predict(d, a1), d, atol=1e-6)
    # predict first: D' = D - P(D, A) from the raw context, then A' = A + U(A, D')
    pf = LADM(16, 4, order="predict_first", drop_path=0.0).eval()
    pf.load_state_dict(ladm.state_dict())
    a1p, d1p = pf.lift(a, d)
    assert torch.allclose(d1p, d - pf.predict(d, a), atol=1e-6)
    assert torch.allclose(a1p, a + pf.update(a, d1p), atol=1e-6)
    assert not torch.allclose(a1p, a1)
    # zero projections: both lifting steps are the identity; LADM off: lift passes its inputs through
    with torch.no_grad():
        for lift in (ladm.update, ladm.predict):
            lift.proj.weight.zero_()
            lift.proj.bias.zero_()
    a1, d1 = ladm.lift(a, d)
    assert torch.equal(a1, a) and torch.equal(d1, d)
    off = LADM(16, 4, enabled=False)
    assert all(torch.equal(u, v) for u, v in zip(off.lift(a, d), (a, d)))
    with pytest.raises(UnmaskError, match="update_first or predict_first"):
        LADM(16, 4, order="sideways")


def test_context_constraint_value_and_loss():
    # frame t holds the value t everywhere: with the fixed split and no lifting, A' = even frames, G = pair means,
    # so r = 0.5 at every position and SmoothL1(0.5) = 0.5 * 0.5^2 = 0.125
    model = tiny_ifdd(issm=False, ladm=False).eval()
    x = torch.arange(4.0).view(1, 1, 4, 1).expand(2, 128, 4, 4)
    tokens = x.permute(0, 2, 3, 1)  # [B, T, N, C]
    out = model.forward_head(tokens)
    assert torch.allclose(out["context_residual"], torch.full((2, 4), 0.5))
    objective = create_loss("ifdd", tasks=model.tasks, context_weight=0.1, label_smoothing=0.0)
    y = {"emotion": torch.tensor([0, 3])}
    terms = objective(out, y)
    assert terms["context"].item() == pytest.approx(0.125)
    ce = torch.nn.functional.cross_entropy(out["emotion_logits"], y["emotion"])
    assert terms["loss"].item() == pytest.approx(ce.item() + 0.1 * 0.125, rel=1e-5)
    assert "context" not in create_loss("ifdd", tasks=model.tasks, context_weight=0.0)(out, y)
    # a constant clip has no residual; masked rows do not count (stacked form)
    assert context_loss(torch.zeros(1, 2, 4), torch.ones(1, 2, dtype=torch.bool)).item() == 0.0
    r = torch.tensor([[[0.5] * 4, [3.0] * 4]])
    assert context_loss(r, torch.tensor([[True, False]])).item() == pytest.approx(0.125)


def test_ifdd_model_on_clips_and_on_cached_tokens():
    torch.manual_seed(0)
    model = tiny_ifdd().eval()
    clip = torch.rand(2, 4, 3, 64, 64)  # [B, T, 3, H, W]
    out = model(clip)
    assert out["emotion_logits"].shape == (2, 7) and out["context_residual"].shape == (2, 4)
    assert out["split_positions"].shape == (2, 2, 2)
    tokens = model.backbone.forward_features(clip.flatten(0, 1))  # [B*T, N, C]: the cached-feature path
    again = model.forward_head(tokens.view(2, 4, *tokens.shape[1:]))
    assert torch.allclose(out["emotion_logits"], again["emotion_logits"], atol=1e-5)
    # the task loss alone trains the split positions
    model.train()
    loss = torch.nn.functional.cross_entropy(model.forward_head(tokens.view(2, 4, *tokens.shape[1:]))["emotion_logits"],
                                             torch.tensor([1, 2]))
    loss.backward()
    assert model.issm.to_context.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.parameters())  # frozen
    with pytest.raises(UnmaskError, match="built for 4 frames"):
        model.forward_head(torch.zeros(1, 6, 4, 128))
    with pytest.raises(UnmaskError, match="even number of frames"):
        tiny_ifdd(frames=5)
    with pytest.raises(UnmaskError, match="data.paradigm=clip"):
        tiny_ifdd(clip_input=False)


def test_tokens_to_map_drops_a_class_token_and_pools_to_the_grid():
    t = torch.arange(17.0).view(1, 1, 17, 1).expand(1, 2, 17, 3)  # class token + 4x4
    x = tokens_to_map(t, 2)
    assert x.shape == (1, 3, 2, 4)
    assert x[0, 0, 0].tolist() == [3.5, 5.5, 11.5, 13.5]  # 2x2 means of tokens 1..16


def test_baselines_on_clip_features():
    torch.manual_seed(0)
    feats = torch.randn(3, 4, 128)  # [B, T, D]
    fa = create_model("frame_average", tasks=EMO, backbone="tiny_resnet", img_size=64).eval()
    out = fa.forward_head(feats)
    assert torch.allclose(out["emotion_logits"], fa.forward_head(feats[:, torch.randperm(4)])["emotion_logits"],
                          atol=1e-6)  # order-blind by construction
    tt = create_model("temporal_transformer", tasks=EMO, backbone="tiny_resnet", img_size=64, frames=4, dim=32).eval()
    assert tt.forward_head(feats)["emotion_logits"].shape == (3, 7)
    assert not torch.allclose(tt.forward_head(feats)["emotion_logits"],
                              tt.forward_head(feats.flip(1))["emotion_logits"])  # it sees order
    with pytest.raises(UnmaskError, match="data.paradigm=clip"):
        fa.forward_head(torch.randn(3, 128))


def test_reproduce_ifdd_rows_are_valid_configs_for_both_bases():
    from unmask.config import load_config
    from unmask.experiments.ifdd_table import QUICK, ROWS

    for base in ("ifdd_synth", "ifdd_dfew"):
        names = set()
        for _, _name, extra in ROWS:
            cfg = load_config(base, QUICK["overrides"] + extra)
            names.add(cfg.model.name)
        assert names == {"ifdd", "frame_average", "temporal_transformer"}
    assert load_config("ifdd_dfew").features.cache == "never"  # the CLIP token cache of DFEW would not fit
