"""Augmentation and normalisation with torchvision transforms v2, on uint8 tensors already at input size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from unmask.errors import UnmaskError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalization(augment_cfg: Any, data_config: dict) -> tuple[tuple, tuple]:
    """(mean, std): ImageNet's (the paper's choice) or the backbone's own (e.g. CLIP's).

    A backbone whose weights only work with its own input scaling (``data_config["own_scaling"]``: the real-face
    expression models) refuses ImageNet's: its features would be computed on the wrong range, silently."""
    if augment_cfg.normalization != "backbone" and data_config.get("own_scaling"):
        raise UnmaskError(f"backbone {data_config['own_scaling']} takes its own input scaling (mean "
                          f"{tuple(data_config['mean'])}, std {tuple(data_config['std'])}), not "
                          f"augment.normalization={augment_cfg.normalization}: set augment.normalization=backbone")
    if augment_cfg.normalization == "backbone":
        return tuple(data_config["mean"]), tuple(data_config["std"])
    return IMAGENET_MEAN, IMAGENET_STD


def is_augmenting(augment_cfg: Any) -> bool:
    return bool(augment_cfg.hflip or augment_cfg.rotation > 0 or augment_cfg.color_jitter > 0
                or augment_cfg.crop_scale < 1)


class RandomResizedCropSameSize(torch.nn.Module):
    """torchvision's RandomResizedCrop back to the input's own size: a random box of ``scale`` of the area (and
    aspect ratio in ``ratio``) resized to ``H x W``. One draw per call, so the frames of a clip ``[K, 3, H, W]``
    share the box."""

    def __init__(self, scale: tuple[float, float], ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        super().__init__()
        self.scale, self.ratio = scale, ratio

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms import RandomResizedCrop

        h, w = images.shape[-2:]
        top, left, bh, bw = RandomResizedCrop.get_params(images, list(self.scale), list(self.ratio))
        return v2.functional.resized_crop(images, top, left, bh, bw, [h, w], antialias=True)


def build_augment(augment_cfg: Any) -> v2.Compose | None:
    """Random resized crop, flip, rotation and colour jitter for one uint8 image ``[3, H, W]`` or clip
    ``[K, 3, H, W]`` (None when all are off)."""
    ops = []
    if augment_cfg.crop_scale < 1:
        ops.append(RandomResizedCropSameSize((augment_cfg.crop_scale, 1.0)))
    if augment_cfg.hflip:
        ops.append(v2.RandomHorizontalFlip(0.5))
    if augment_cfg.rotation > 0:
        ops.append(v2.RandomRotation(augment_cfg.rotation))
    if augment_cfg.color_jitter > 0:
        j = augment_cfg.color_jitter
        ops.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j))
    return v2.Compose(ops) if ops else None


class Preprocess:
    """uint8 ``[B, 3, H, W]`` (or ``[B, K, 3, H, W]``) -> normalised float, optionally augmenting per sample.

    Each sample gets its own random parameters (v2 transforms draw once per call); the frames of one clip
    share them, so a clip stays temporally consistent. Randomness comes from torch's global RNG, which the
    engine seeds.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], augment: v2.Compose | None = None):
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self.augment = augment

    def __call__(self, images: torch.Tensor, *, train: bool) -> torch.Tensor:
        if train and self.augment is not None:
            images = torch.stack([self.augment(img) for img in images])
        x = images.float().div_(255)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 ``[..., 3, H, W]`` stack to ``size`` x ``size`` (antialiased bilinear), once."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:]).float()
    out = []
    for chunk in flat.split(256):  # bounded memory
        out.append(F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
    return torch.cat(out).round_().clamp_(0, 255).to(torch.uint8).reshape(*lead, 3, size, size)
