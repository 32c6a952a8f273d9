"""Where and how a run computes: the device, the seeds."""

from __future__ import annotations

import torch

from unmask.errors import UnmaskError


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present) | ``cpu`` | ``cuda``; asking for CUDA without one is an UnmaskError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UnmaskError("runtime.device=cuda but no CUDA device is available; use runtime.device=auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed torch's global RNG (CPU and CUDA): what a randomly initialised model and augmentation draw from."""
    torch.manual_seed(seed)
