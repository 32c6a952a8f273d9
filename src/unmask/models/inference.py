"""Inference helpers shared by feature extraction and prediction: precision, cast copies, weight digests."""

from __future__ import annotations

import copy
import hashlib

import torch


def cpu_supports_bf16() -> bool:
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" or cpu_supports_bf16():
        return torch.bfloat16
    return torch.float32


def state_digest(module: torch.nn.Module) -> str:
    """sha256 over a module's parameters and buffers (names, shapes, values)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cast_backbone(backbone: torch.nn.Module, dtype: torch.dtype, device: torch.device, channels_last: bool = False) -> torch.nn.Module:
    """The module that extracts: ``backbone`` itself in fp32, else a copy whose weights are cast once
    (``Backbone.inference_copy``: cast while copying, and for CLIP with QuickGELU an equivalent faster MLP)."""
    if dtype == torch.float32:
        module = backbone
    elif hasattr(backbone, "inference_copy"):
        module = backbone.inference_copy(dtype, device)  # type: ignore[operator]
    else:
        module = copy.deepcopy(backbone)
    module = module.to(device=device, dtype=dtype)  # floating-point parameters and buffers only
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    return module


def uses_convolutions(backbone: torch.nn.Module) -> bool:
    """True for conv nets (channels-last helps oneDNN/cuDNN); a ViT's patch embedding does not count."""
    return any(isinstance(m, torch.nn.Conv2d) and m.kernel_size != m.stride for m in backbone.modules())
