"""Augmentation: the random resized crop keeps the input's size, gives every frame of a clip the same box, and
is torchvision's crop at torchvision's drawn box."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

from unmask.config import AugmentConfig, load_config
from unmask.data.transforms import build_augment, is_augmenting
from unmask.errors import UnmaskError


def _clip(k=4, h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (k, 3, h, w), generator=g, dtype=torch.uint8)


def test_random_resized_crop_is_one_box_per_clip_at_the_input_size():
    cfg = AugmentConfig(hflip=False, rotation=0.0, color_jitter=0.0, crop_scale=0.5)
    assert is_augmenting(cfg) and not is_augmenting(AugmentConfig(hflip=False, rotation=0.0, color_jitter=0.0))
    aug = build_augment(cfg)
    clip = _clip()
    torch.manual_seed(3)
    out = aug(clip)
    assert out.shape == clip.shape and out.dtype == torch.uint8
    assert not torch.equal(out, clip)
    # independently: torchvision's box for the same draw, applied frame by frame
    torch.manual_seed(3)
    top, left, bh, bw = RandomResizedCrop.get_params(clip, [0.5, 1.0], [3 / 4, 4 / 3])
    assert bh * bw >= 0.5 * 40 * 48 * 0.99
    for k in range(len(clip)):
        want = TF.resized_crop(clip[k], top, left, bh, bw, [40, 48], antialias=True)
        assert torch.equal(out[k], want)
    # another draw, another box
    assert not torch.equal(aug(clip), out)


def test_crop_scale_is_checked(tmp_path):
    with pytest.raises(UnmaskError, match="augment.crop_scale"):
        load_config("ifdd_synth", ["augment.crop_scale=0"])
    assert load_config("ifdd_dfew").augment.crop_scale == 0.5
