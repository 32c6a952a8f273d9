"""unmask: recognise emotion where faces hide or dilute it (masked expressions, in-the-wild clips,
micro-expressions).

What a user reaches for first, as in timm and open_clip::

    import unmask
    unmask.list_models()                                   # ['clip_linear_probe', 'clip_zero_shot', 'dsid', ...]
    model = unmask.create_model("dsid", backbone="tiny_vit")
    objective = unmask.create_loss("dsid", tasks=model.tasks, alpha=0.5)
    cfg = unmask.load_config("dsid_synth", ["optim.epochs=5"])
    unmask.train_run(cfg, "runs/x")
    model, ckpt = unmask.load_checkpoint("runs/x/folds/s01")
    unmask.Predictor.from_checkpoint("runs/x/folds/s01").predict_paths(["face.jpg"])

Names are resolved on first use, so ``import unmask`` stays light (no torch until a model is needed).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "create_model": "unmask.models", "list_models": "unmask.models", "create_backbone": "unmask.models",
    "list_backbones": "unmask.models", "create_loss": "unmask.losses", "list_losses": "unmask.losses",
    "load_checkpoint": "unmask.checkpoint", "Predictor": "unmask.predict", "train_run": "unmask.train.run",
    "load_config": "unmask.config", "Task": "unmask.tasks", "read_manifest": "unmask.data.manifest",
    "prepare": "unmask.data.prepare", "PreparedSet": "unmask.data.prepare",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # resolved once
        return value
    raise AttributeError(f"module 'unmask' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
