"""Adapters of the DSID paper (sec. III-A): Linear -> BatchNorm1d -> ReLU -> Dropout, and the model base class.

``HeadModel`` fixes the contract every unmask model keeps: ``forward(x) == forward_head(backbone
.forward_features(x))`` (so heads can be trained on cached backbone features with the same results), a
``model_args`` dict that rebuilds the architecture with ``create_model(**model_args)`` (``weights=None``:
the checkpoint's state dict is loaded afterwards), and ``data_config`` from the backbone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unmask.models.backbones import Backbone


class Adapter(nn.Sequential):
    """Linear -> BatchNorm1d -> ReLU -> Dropout: ``[B, in_dim] -> [B, out_dim]``."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.5):
        super().__init__(
            nn.Linear(in_dim, out_dim),
            nn.BatchNorm1d(out_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.in_dim, self.out_dim = in_dim, out_dim


class HeadModel(nn.Module):
    """Backbone + head. Subclasses implement ``forward_head(features [B, D]) -> dict[str, Tensor]``."""

    def __init__(self, backbone: Backbone, model_args: dict[str, Any]):
        super().__init__()
        self.backbone = backbone
        # architecture kwargs + the backbone's resolved ones (e.g. quick_gelu); never weights
        self.model_args = {**model_args, **backbone.build_args, "weights": None}

    @property
    def data_config(self) -> dict[str, Any]:
        return self.backbone.data_config

    def forward_head(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # x [B, 3, H, W]
        return self.forward_head(self.backbone.forward_features(x))  # features [B, D]

    def param_counts(self) -> dict[str, int]:
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return {"trainable": trainable, "frozen": frozen}
