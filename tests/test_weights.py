"""The weights spec: checkpoints written in the official formats from random tiny models load exactly;
bad files, missing files and tags offline are clear errors."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import logging
import warnings

import open_clip
import pytest
import torch
from open_clip.model import CLIP, convert_weights_to_lp
from safetensors.torch import save_file

from unmask.errors import UnmaskError
from unmask.models import create_backbone, create_model, parse_weights

TINY_CLIP_CFG = {  # must match unmask.models.backbones.tiny_clip_vit
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def _seeded(seed=0):
    torch.manual_seed(seed)


def assert_same(loaded: dict, saved: dict):
    assert set(loaded) == set(saved)
    for key, value in saved.items():
        assert torch.equal(loaded[key], value.to(loaded[key].dtype)), key


# -- timm formats ---------------------------------------------------------------------------------------
def _timm_checkpoint(name, classifier, width):
    """A state dict as timm ships it: backbone + an ImageNet-style classifier (dropped on load)."""
    _seeded(1)
    sd = {k: v.clone() for k, v in create_backbone(name).model.state_dict().items()}
    sd[f"{classifier}.weight"] = torch.randn(10, width)
    sd[f"{classifier}.bias"] = torch.randn(10)
    return sd


@pytest.mark.parametrize("name,classifier,width", [("tiny_vit", "head", 64), ("tiny_resnet", "fc", 128)])
@pytest.mark.parametrize("layout", ["safetensors", "pth", "wrapped_ddp"])
def test_timm_files_load_exactly(tmp_path, name, classifier, width, layout):
    sd = _timm_checkpoint(name, classifier, width)
    if layout == "safetensors":
        path = tmp_path / "model.safetensors"
        save_file(sd, str(path))
    elif layout == "pth":
        path = tmp_path / "pytorch_model.bin"
        torch.save(sd, path)
    else:  # a training checkpoint: {"state_dict": {"module.<key>": ...}, "epoch": ...}
        path = tmp_path / "checkpoint.pth"
        torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 7}, path)
    backbone = create_backbone(name, weights=path)
    expected = {k: v for k, v in sd.items() if not k.startswith(f"{classifier}.")}
    assert_same(backbone.model.state_dict(), expected)


def test_weights_flow_through_create_model(tmp_path):
    sd = _timm_checkpoint("tiny_vit", "head", 64)
    path = tmp_path / "tiny_vit.safetensors"
    save_file(sd, str(path))
    model = create_model("dsid", backbone="tiny_vit", weights=str(path), adapter_dim=8, branch_dim=4)
    assert_same(model.backbone.model.state_dict(), {k: v for k, v in sd.items() if not k.startswith("head.")})
    assert model.model_args["weights"] is None  # rebuilding never touches weights files


def test_wrong_shape_extra_and_missing_keys_are_listed(tmp_path):
    sd = _timm_checkpoint("tiny_vit", "head", 64)
    sd["pos_embed"] = torch.zeros(1, 10, 64)
    sd["extra.layer.weight"] = torch.zeros(3)
    del sd["norm.weight"]
    path = tmp_path / "bad.safetensors"
    save_file(sd, str(path))
    with pytest.raises(UnmaskError) as info:
        create_backbone("tiny_vit", weights=path)
    message = str(info.value)
    assert "missing: norm.weight" in message
    assert "unexpected: extra.layer.weight" in message
    assert "wrong shape: pos_embed: file (1, 10, 64) vs model (1, 65, 64)" in message
    assert "missing: norm.weight" in info.value.problems


def test_clip_checkpoint_missing_text_tower_is_an_error(tmp_path):
    _seeded(2)
    visual_only = {f"visual.{k}": v for k, v in CLIP(**TINY_CLIP_CFG).visual.state_dict().items()}
    path = tmp_path / "visual.pt"
    torch.save(visual_only, path)
    with pytest.raises(UnmaskError, match="missing: token_embedding.weight"):
        create_backbone("tiny_clip_vit", weights=path)


def test_missing_file_and_unreadable_pickle(tmp_path):
    with pytest.raises(UnmaskError, match="weights file not found"):
        create_backbone("tiny_vit", weights=tmp_path / "nope.safetensors")
    with pytest.raises(UnmaskError, match="weights file not found"):
        create_backbone("tiny_vit", weights="nope.pt")  # a checkpoint suffix is a path, never a tag
    with pytest.raises(UnmaskError, match="weights file not found"):
        parse_weights("/does/not/exist/ViT-B-16.pt")
    path = tmp_path / "arbitrary.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": Opaque()}, path)
    with pytest.raises(UnmaskError, match="is not a safe weights file"):  # weights_only=True refuses objects
        create_backbone("tiny_vit", weights=path)


class Opaque:
    pass


# -- open_clip and OpenAI formats -------------------------------------------------------------------------
def _tiny_clip(quick_gelu):
    _seeded(3)
    return CLIP(**TINY_CLIP_CFG, quick_gelu=quick_gelu).eval()


@pytest.mark.parametrize("layout", ["open_clip_wrapped", "plain_bin", "safetensors"])
def test_open_clip_checkpoints_load_exactly(tmp_path, layout):
    clip = _tiny_clip(quick_gelu=False)
    sd = {k: v.clone() for k, v in clip.state_dict().items()}
    if layout == "open_clip_wrapped":  # as open_clip's training script saves: module. prefix from DDP
        path = tmp_path / "epoch_3.pt"
        torch.save({"epoch": 3, "name": "tiny", "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    elif layout == "plain_bin":
        path = tmp_path / "open_clip_pytorch_model.bin"
        torch.save(sd, path)
    else:
        path = tmp_path / "open_clip_model.safetensors"
        save_file(sd, str(path))
    full = create_backbone("tiny_clip_vit", weights=path, text_tower=True)
    assert_same(full.model.state_dict(), sd)
    assert full.build_args["quick_gelu"] is False
    image_only = create_backbone("tiny_clip_vit", weights=path)
    assert_same(image_only.model.state_dict(), {k[len("visual."):]: v for k, v in sd.items()
                                                if k.startswith("visual.")})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(image_only(x), clip.encode_image(x), atol=1e-6)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # open_clip's loader tries torch.jit.load first
def test_openai_state_dict_format(tmp_path):
    """OpenAI's layout: open_clip's CLIP keys, matmul weights in fp16, plus three metadata entries."""
    clip = _tiny_clip(quick_gelu=True)
    convert_weights_to_lp(clip, torch.float16)
    sd = {k: v.clone() for k, v in clip.state_dict().items()}
    assert torch.float16 in {v.dtype for v in sd.values()}
    saved = dict(sd, input_resolution=torch.tensor(64), context_length=torch.tensor(32),
                 vocab_size=torch.tensor(49408))
    path = tmp_path / "ViT-tiny.pt"
    torch.save(saved, path)
    open_clip.load_openai_model(str(path), device="cpu")  # the file is accepted by open_clip's OpenAI loader
    backbone = create_backbone("tiny_clip_vit", weights=path, text_tower=True)
    assert backbone.build_args["quick_gelu"] is True  # OpenAI weights were trained with QuickGELU
    assert_same(backbone.model.state_dict(), sd)
    assert all(v.dtype == torch.float32 for v in backbone.model.state_dict().values())
    model = create_model("clip_zero_shot", backbone="tiny_clip_vit", weights=path)
    rebuilt = create_model(**model.model_args)
    assert rebuilt.model_args["quick_gelu"] is True
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x)["true_logits"], rebuilt.eval()(x)["true_logits"])


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.save/trace deprecation
def test_openai_torchscript_archive(tmp_path):
    """OpenAI ships TorchScript archives (traced forward/encode_image/encode_text, attn mask as a constant)."""
    clip = _tiny_clip(quick_gelu=True)
    mask = clip.attn_mask
    del clip._buffers["attn_mask"]  # OpenAI's model keeps the causal mask as a plain attribute
    clip.attn_mask = mask
    image, text = torch.ones(1, 3, 64, 64), torch.zeros(1, 32, dtype=torch.int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        archive = torch.jit.trace_module(clip, {"forward": (image, text), "encode_image": (image,),
                                                "encode_text": (text,)}, check_trace=False)
    path = tmp_path / "ViT-tiny.pt"
    torch.jit.save(archive, str(path))
    open_clip.load_openai_model(str(path), device="cpu")
    backbone = create_backbone("tiny_clip_vit", weights=str(path), text_tower=True)
    assert backbone.build_args["quick_gelu"] is True
    assert_same(backbone.model.state_dict(), dict(clip.state_dict()))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(backbone(x), clip.encode_image(x), atol=1e-6)


# -- tags ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,tag,hint", [
    ("clip_vit_b16", "openai", "ViT-B-16.pt"),
    ("clip_vit_b16", "laion2b_s34b_b88k", "ViT-B-16.pt"),
    ("vit_b16", "timm", "vit_base_patch16_224.safetensors"),
    ("vit_b16", "augreg_in21k_ft_in1k", "vit_base_patch16_224.safetensors"),
    ("resnet18", "timm", "resnet18.safetensors"),
])
def test_tag_offline_is_one_clear_error(monkeypatch, name, tag, hint):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UnmaskError) as info:
        create_backbone(name, weights=tag)
    message = str(info.value)
    assert f"pretrained weights {tag!r} for {name} cannot be downloaded (offline)" in message
    assert f"pass a local file: model.weights=/path/to/{hint}" in message


def test_unknown_tags_and_tiny_tags(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UnmaskError, match="unknown pretrained tag 'laion5b'.*openai, laion400m_e31"):
        create_backbone("clip_vit_b16", weights="laion5b")
    with pytest.raises(UnmaskError, match="unknown pretrained tag 'imagenet'.*timm, augreg"):
        create_backbone("vit_b16", weights="imagenet")
    with pytest.raises(UnmaskError, match="tiny_vit has no pretrained tags"):
        create_backbone("tiny_vit", weights="timm")


def test_random_init_is_announced(caplog):
    with caplog.at_level(logging.WARNING, logger="unmask"):
        create_backbone("tiny_resnet")
    assert "tiny_resnet: random initialisation" in caplog.text
