"""IFDD's video backbone: MViTv2-S cut to XS on torchvision's MViT, loading a torchvision-format S checkpoint."""

from __future__ import annotations

import pytest
import torch

from unmask.errors import UnmaskError
from unmask.models.mvit_xs import XS_FROM_S, block_settings, build_mvit, mvit_xs, xs_state_from_s

TINY = dict(size=64, frames=8, width=1 / 6)  # channels 16-128, 8 frames of 64 px


@pytest.fixture(scope="module")
def s_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    s = build_mvit(range(16), size=64, frames=8, width=1 / 6)  # a (tiny) mvit_v2_s, random weights
    path = tmp_path_factory.mktemp("mvit") / "mvit_v2_s.pth"
    torch.save(s.state_dict(), path)  # torchvision's format: a plain state dict
    return path, s.state_dict()


def test_the_full_size_xs_matches_the_digest():
    settings = [b.output_channels for b in block_settings(XS_FROM_S)]
    assert settings == [96, 192, 192, 384, 384, 384, 384, 384, 768, 768]  # stage depths 1, 2, 5, 2


def test_xs_loads_the_mapped_s_checkpoint_and_gives_the_ifdd_map(s_checkpoint):
    path, s_state = s_checkpoint
    xs = mvit_xs(path, **TINY).eval()
    own = xs.mvit.state_dict()
    for x_block, s_block in enumerate(XS_FROM_S):  # the values arrived where the mapping says
        for key, value in own.items():
            if key.startswith(f"blocks.{x_block}."):
                assert torch.equal(value, s_state[key.replace(f"blocks.{x_block}.", f"blocks.{s_block}.", 1)])
    assert torch.equal(own["conv_proj.weight"], s_state["conv_proj.weight"])
    assert torch.equal(own["norm.weight"], s_state["norm.weight"])
    assert not any(k.startswith("head.") and k in s_state for k in own)  # the K400 head is not kept
    x = xs(torch.rand(2, 3, 8, 64, 64))
    assert x.shape == (2, 128, 4, 4)  # [B, C, T' = T/2, N = (64/32)^2]


def test_a_checkpoint_that_does_not_fit_is_refused(s_checkpoint, tmp_path):
    path, s_state = s_checkpoint
    with pytest.raises(UnmaskError, match="does not fit MViTv2-S XS"):
        mvit_xs(path, size=64, frames=8, width=1 / 3)  # other widths
    bad = dict(s_state)
    bad["blocks.16.norm1.weight"] = torch.zeros(3)
    with pytest.raises(UnmaskError, match="unexpected key"):
        xs_state_from_s(bad)
    with pytest.raises(UnmaskError, match="weights file not found"):
        mvit_xs(tmp_path / "none.pth", **TINY)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(UnmaskError, match="cannot read"):
        mvit_xs(tmp_path / "junk.pth", **TINY)


def test_the_registered_video_backbone_loads_the_file_and_gives_tokens_per_time_step(s_checkpoint):
    """create_backbone("tiny_mvit_xs", weights=FILE): the same mapping through the weights spec; clips [B, T, 3, H, W]
    in, tokens [B, T', N, C] out, the same values as the XS map."""
    from unmask.models import create_backbone

    path, s_state = s_checkpoint
    bb = create_backbone("tiny_mvit_xs", weights=str(path)).eval()
    assert torch.equal(bb.model.mvit.state_dict()["blocks.8.norm1.weight"], s_state["blocks.14.norm1.weight"])
    clip = torch.rand(2, 8, 3, 64, 64)
    with torch.no_grad():
        tokens = bb.forward_features(clip)
        expected = bb.model(clip.transpose(1, 2))  # [B, C, T', N]
    assert tokens.shape == (2, 4, 4, 128) and torch.equal(tokens, expected.permute(0, 2, 3, 1))
    assert bb.forward_head(tokens).shape == (2, 4, 128) and bb.encodes_clips
    with pytest.raises(UnmaskError, match="no pretrained tags"):
        create_backbone("tiny_mvit_xs", weights="kinetics400")
