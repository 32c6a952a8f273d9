"""Contract tests for every registered model and backbone (tiny backbones on CPU; full-size ones built once)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import functools
import logging

import pytest
import torch

from unmask.emotions import EMOTIONS, MFED_TASKS
from unmask.errors import UnmaskError
from unmask.models import create_backbone, create_model, list_backbones, list_models
from unmask.models.backbones import parse_mode

TINY = ("tiny_vit", "tiny_resnet", "tiny_clip_vit")
EXPECTED_KEYS = {
    "dsid": {"true_logits", "disguised_logits", "true_features", "disguised_features"},
    "single_stream": {"true_logits", "true_features"},
    "clip_zero_shot": {"true_logits", "disguised_logits"},
    "clip_linear_probe": {"true_logits", "disguised_logits"},
    "multitask": {"true_logits", "disguised_logits", "features"},
    "fer_off_the_shelf": {"true_logits", "disguised_logits", "neutral_prob"},
    "facex_off_the_shelf": {"true_logits", "disguised_logits", "neutral_prob"},
    "medn": {"true_logits", "disguised_logits", "motion_features", "emotion_features", "features", "gate"},
}
#: models over clips of frames (data.paradigm=clip, or clip_flow for MEDN), with their own contract tests
CLIP_MODELS = {"ifdd": "tests/test_ifdd.py", "frame_average": "tests/test_ifdd.py",
               "temporal_transformer": "tests/test_ifdd.py", "medn": "tests/test_medn.py"}
SMALL = {"dsid": dict(adapter_dim=32, branch_dim=16), "single_stream": dict(adapter_dim=32),
         "multitask": dict(adapter_dim=32)}


def _cases():
    for name in list_models():
        for bb in TINY:
            if name == "clip_zero_shot" and bb != "tiny_clip_vit":
                continue
            if name.endswith("_off_the_shelf"):  # published heads on their own backbones: tests/test_realface.py
                continue
            if name in CLIP_MODELS:  # models that read whole clips (frames + flow): their own tests
                continue
            yield name, bb


CASES = list(_cases())


@functools.cache
def _build(name, bb):
    """One model per case, shared by the contract tests (each test sets train/eval itself)."""
    model = create_model(name, tasks=MFED_TASKS, backbone=bb, **SMALL.get(name, {}))
    model.zero_grad(set_to_none=True)
    return model


def _images(model, b=4, seed=0):
    return torch.randn(b, *model.data_config["input_size"], generator=torch.Generator().manual_seed(seed))


def test_registry_lists():
    assert set(list_models()) == set(EXPECTED_KEYS) | set(CLIP_MODELS)
    assert set(list_backbones()) == {"clip_vit_b16", "vit_b16", "resnet18", "fer_minixception", "facex", *TINY,
                                     "mvit_xs", "tiny_mvit_xs"}  # video backbones: tests/test_mvit_xs.py


@pytest.mark.parametrize("name,bb", CASES)
def test_forward_backward_keys_shapes(name, bb):
    model = _build(name, bb).train()
    model.zero_grad(set_to_none=True)
    x = _images(model).requires_grad_(True)
    out = model(x)
    assert set(out) == EXPECTED_KEYS[name]
    for key, value in out.items():
        assert value.shape[0] == 4 and value.ndim == 2, key
        if key.endswith("_logits"):
            assert value.shape[1] == len(EMOTIONS)
    sum(v.sum() for v in out.values()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, pname
        else:
            assert p.grad is None, pname
    for p in model.backbone.parameters():  # default mode is frozen
        assert not p.requires_grad and p.grad is None


@pytest.mark.parametrize("name,bb", CASES)
def test_forward_equals_forward_head_of_features(name, bb):
    model = _build(name, bb).eval()
    x = _images(model)
    with torch.no_grad():
        full, split = model(x), model.forward_head(model.backbone(x))
    assert set(full) == set(split)
    assert all(torch.equal(full[k], split[k]) for k in full)
    model.train()  # dropout + batch statistics: same random stream gives the same result
    torch.manual_seed(3)
    full = model(x)
    torch.manual_seed(3)
    split = model.forward_head(model.backbone(x))
    assert all(torch.equal(full[k], split[k]) for k in full)


@pytest.mark.parametrize("name,bb", CASES)
def test_rebuild_from_model_args_and_state_dict(name, bb):
    model = _build(name, bb).eval()
    assert model.model_args["weights"] is None and model.model_args["name"] == name
    assert model.data_config == model.backbone.data_config
    rebuilt = create_model(**model.model_args)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    x = _images(model)
    with torch.no_grad():
        a, b = model(x), rebuilt(x)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("bb", TINY)
def test_frozen_backbone_no_grad_and_eval(bb):
    model = create_model("dsid", backbone=bb, adapter_dim=16, branch_dim=8)
    model.train()
    assert model.training and model.masked_adapter.training
    assert all(not m.training for m in model.backbone.modules())
    assert all(not p.requires_grad for p in model.backbone.parameters())
    counts = model.backbone.param_counts()
    assert counts == {"trainable": 0, "frozen": sum(p.numel() for p in model.backbone.parameters())}
    head = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("backbone."))
    assert model.param_counts() == {"trainable": head, "frozen": counts["frozen"]}


def _trainable_names(backbone):
    return {n for n, p in backbone.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("mode", ["last_n_blocks=1", "last_n_blocks:1", 1])
def test_last_n_blocks_tiny_vit(mode):
    bb = create_backbone("tiny_vit", mode=mode)
    names = _trainable_names(bb)
    assert names and all(n.startswith(("model.blocks.1.", "model.norm.")) for n in names)
    assert any(n.startswith("model.norm.") for n in names)
    bb.train()
    assert bb.model.blocks[1].training and not bb.model.blocks[0].training
    assert not bb.model.patch_embed.training
    expected = sum(p.numel() for p in bb.model.blocks[1].parameters()) + sum(
        p.numel() for p in bb.model.norm.parameters())
    assert bb.param_counts()["trainable"] == expected


def test_last_n_blocks_resnet_and_clip():
    bb = create_backbone("tiny_resnet", mode="last_n_blocks=2")
    assert {n.split(".")[1] for n in _trainable_names(bb)} == {"layer3", "layer4"}
    bb.train()
    assert not bb.model.layer2.training and not bb.model.bn1.training and bb.model.layer4.training
    bb = create_backbone("tiny_clip_vit", mode="last_n_blocks=1", text_tower=True)
    names = _trainable_names(bb)
    assert names == {n for n, _ in bb.named_parameters()
                     if n.startswith(("model.visual.transformer.resblocks.1.", "model.visual.ln_post."))
                     or n == "model.visual.proj"}


def test_finetune_mode_and_logged_counts(caplog):
    with caplog.at_level(logging.INFO, logger="unmask"):
        bb = create_backbone("tiny_vit", mode="finetune")
    total = sum(p.numel() for p in bb.parameters())
    assert bb.param_counts() == {"trainable": total, "frozen": 0}
    assert f"{total} trainable, 0 frozen" in caplog.text
    assert "random initialisation" in caplog.text
    clip = create_backbone("tiny_clip_vit", mode="finetune", text_tower=True)  # text tower stays frozen
    assert clip.param_counts()["trainable"] == sum(p.numel() for p in clip.model.visual.parameters())


def test_invalid_modes():
    assert parse_mode("last_n_blocks:3") == ("last_n_blocks", 3)
    for bad in ("warm", "last_n_blocks", "last_n_blocks=0", "last_n_blocks=x", 0, True):
        with pytest.raises(UnmaskError, match="invalid backbone mode"):
            parse_mode(bad)
    with pytest.raises(UnmaskError, match="only 2 blocks"):
        create_backbone("tiny_vit", mode=3)


def test_unknown_names_and_arguments_list_known_ones():
    with pytest.raises(UnmaskError, match="known models: clip_linear_probe, clip_zero_shot, dsid, facex_off_the_shelf, "
                                          "fer_off_the_shelf, frame_average, ifdd, medn, multitask, "
                                          "single_stream, temporal_transformer"):
        create_model("dsdi")
    with pytest.raises(UnmaskError, match="known backbones: clip_vit_b16, facex, fer_minixception, mvit_xs, resnet18, tiny_clip_vit"):
        create_model("dsid", backbone="vit_l14")
    with pytest.raises(UnmaskError, match="known backbones"):
        create_backbone("nope")
    with pytest.raises(UnmaskError, match="unknown argument.*patch_size.*accepted: weights, mode, img_size"):
        create_model("dsid", backbone="tiny_vit", patch_size=4)
    with pytest.raises(UnmaskError, match="unknown task 'both'; this data's tasks: true, disguised"):
        create_model("single_stream", backbone="tiny_vit", task="both")
    with pytest.raises(UnmaskError, match="built from the data's tasks"):
        create_model("multitask", backbone="tiny_vit")


def test_models_are_built_from_the_datas_tasks():
    """Heads follow the tasks: class counts from the label names, a multi-label head for an AU task, and the
    tasks travel in model_args so a checkpoint rebuilds the same heads."""
    from unmask.tasks import Task

    tasks = (Task("valence", "single", ("negative", "positive", "surprise")), Task("aus", "multi", ("AU4", "AU12")))
    model = create_model("multitask", tasks=tasks, backbone="tiny_vit", img_size=32, adapter_dim=8).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out["valence_logits"].shape == (2, 3) and out["aus_logits"].shape == (2, 2)
    again = create_model(**{**model.model_args, "name": "multitask"})
    assert again.tasks == tasks and [t.name for t in again.tasks] == ["valence", "aus"]
    probe = create_model("clip_linear_probe", tasks=tasks[:1], backbone="tiny_vit", img_size=32)
    assert set(probe(torch.randn(2, 3, 32, 32))) == {"valence_logits"}
    with pytest.raises(UnmaskError, match="task 'aus' is multi-label"):
        create_model("dsid", tasks=tasks, backbone="tiny_vit", true_task="valence", disguised_task="aus")


def test_backbone_tokens_and_pooled_embedding():
    """timm's names: forward_features gives tokens [B, N, C], forward_head(tokens) the pooled [B, D]; forward is both."""
    for name in TINY:
        bb = create_backbone(name, img_size=32).eval()
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            tokens = bb.forward_features(x)
            assert tokens.dim() == 3 and tokens.shape[0] == 2
            assert torch.equal(bb.forward_head(tokens), bb(x)) and bb(x).shape == (2, bb.num_features)
    with pytest.raises(UnmaskError, match="needs a CLIP backbone"):
        create_model("clip_zero_shot", backbone="tiny_vit")


def test_single_stream_disguised_and_img_size():
    model = create_model("single_stream", backbone="tiny_vit", task="disguised", img_size=32, adapter_dim=8)
    assert model.data_config["input_size"] == (3, 32, 32)
    out = model.eval()(torch.randn(2, 3, 32, 32))
    assert set(out) == {"disguised_logits", "disguised_features"}
    assert model.model_args["img_size"] == 32 and model.model_args["task"] == "disguised"


def test_clip_zero_shot_logits_are_scaled_cosines():
    model = create_model("clip_zero_shot", backbone="tiny_clip_vit").eval()
    x = _images(model)
    with torch.no_grad():
        out = model(x)
        image = torch.nn.functional.normalize(model.backbone(x), dim=-1)
        tokens = model.backbone.tokenizer()(["a face showing anger."])
        text = torch.nn.functional.normalize(model.backbone.encode_text(tokens), dim=-1)
    assert torch.equal(out["true_logits"], out["disguised_logits"])
    scale = model.backbone.model.logit_scale.exp()
    expected = scale * image @ model.true_class_embeddings.t()
    assert torch.allclose(out["true_logits"], expected, atol=1e-5)
    assert torch.allclose(model.true_class_embeddings.norm(dim=-1), torch.ones(6), atol=1e-5)
    single = create_model("clip_zero_shot", backbone="tiny_clip_vit", templates=["a face showing {emotion}."])
    single.load_state_dict({k: v for k, v in model.state_dict().items() if not k.endswith("class_embeddings")}
                           | {k: v for k, v in single.state_dict().items() if k.endswith("class_embeddings")})
    single.set_prompts(["a face showing {label}."])
    assert torch.allclose(single.true_class_embeddings[0], text[0], atol=1e-5)
    with pytest.raises(UnmaskError, match="emotion"):
        create_model("clip_zero_shot", backbone="tiny_clip_vit", templates=["a photo of a face."])


@pytest.fixture(scope="module")
def full_size():
    return {name: create_backbone(name) for name in ("clip_vit_b16", "vit_b16", "resnet18")}


def test_full_size_backbones_config(full_size):
    clip, vit, resnet = full_size["clip_vit_b16"], full_size["vit_b16"], full_size["resnet18"]
    assert clip.num_features == 512 and vit.num_features == 768 and resnet.num_features == 512
    assert clip.data_config == {"input_size": (3, 224, 224), "mean": (0.48145466, 0.4578275, 0.40821073),
                                "std": (0.26862954, 0.26130258, 0.27577711), "interpolation": "bicubic"}
    assert vit.data_config == {"input_size": (3, 224, 224), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                               "interpolation": "bicubic"}
    assert resnet.data_config == {"input_size": (3, 224, 224), "mean": (0.485, 0.456, 0.406),
                                  "std": (0.229, 0.224, 0.225), "interpolation": "bicubic"}
    assert len(clip.model.transformer.resblocks) == 12 and len(vit.model.blocks) == 12
    assert clip.build_args == {"quick_gelu": False} and not clip.has_text_tower
    assert clip.param_counts()["trainable"] == 0
    with torch.no_grad():
        assert resnet(torch.randn(1, 3, 224, 224)).shape == (1, 512)
        assert clip(torch.randn(1, 3, 224, 224)).shape == (1, 512)


@pytest.mark.parametrize("quick_gelu", [True, False])
def test_clip_inference_copy_equals_plain_open_clip_forward(quick_gelu):
    """The extraction/prediction copy (cast while copying; QuickGELU MLPs folded into SiLU ones) gives the
    plain open_clip forward's features: fp32 to float tolerance, bf16 as close as a plain bf16 copy."""
    import copy

    from open_clip.transformer import QuickGELU

    torch.manual_seed(0)
    bb = create_backbone("tiny_clip_vit", quick_gelu=quick_gelu, text_tower=True).eval()
    state = {k: v.clone() for k, v in bb.state_dict().items()}
    x = torch.randn(6, *bb.data_config["input_size"], generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = bb.model.visual(x)  # open_clip's own forward
        fast32 = bb.inference_copy(torch.float32)
        bf16 = bb.inference_copy(torch.bfloat16)
        plain16 = copy.deepcopy(bb).to(torch.bfloat16)  # what extraction ran before
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out16 = bf16(x.bfloat16()).float()
            plain_out16 = plain16(x.bfloat16()).float()
        out32 = fast32(x)
    acts = {type(m) for c in (fast32, bf16) for m in c.image_tower.modules() if isinstance(m, (QuickGELU, torch.nn.SiLU))}
    assert acts == ({torch.nn.SiLU} if quick_gelu else set())  # the text tower is left as it is
    assert torch.allclose(out32, ref, rtol=1e-4, atol=1e-5), (out32 - ref).abs().max()
    cos = torch.nn.functional.cosine_similarity(out16, ref, dim=-1)
    plain_cos = torch.nn.functional.cosine_similarity(plain_out16, ref, dim=-1)
    assert cos.min() > 0.999 and cos.min() > plain_cos.min() - 1e-3
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    assert bf16.has_text_tower and bf16.mode == bb.mode and not bf16.training
    for k, v in bb.state_dict().items():  # the original is untouched and shares no storage with the copies
        assert v.dtype == state[k].dtype and torch.equal(v, state[k]), k
    ptrs = {p.data_ptr() for p in bb.parameters()}
    assert not ptrs & {p.data_ptr() for c in (fast32, bf16) for p in c.parameters()}
    assert isinstance(bb.model.visual.transformer.resblocks[0].mlp.gelu,
                      QuickGELU if quick_gelu else torch.nn.GELU)


@pytest.mark.parametrize("bb", ["tiny_vit", "tiny_resnet"])
def test_inference_copy_is_a_cast_deepcopy(bb):
    import copy

    model = create_backbone(bb).eval()
    fast, plain = model.inference_copy(torch.bfloat16), copy.deepcopy(model).to(torch.bfloat16)
    a, b = fast.state_dict(), plain.state_dict()
    assert a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
    x = _images(model)
    with torch.inference_mode():
        assert torch.equal(fast(x.bfloat16()), plain(x.bfloat16()))
