"""Self-describing checkpoints: the file alone rebuilds the model and its preprocessing.

A checkpoint is a ``torch.save`` dict::

    format: "unmask.checkpoint", version: 1, unmask_version
    model_args      create_model(**model_args) rebuilds the architecture (no weights touched)
    state_dict      the weights; without the backbone's when it was frozen with weights from a file or tag
    backbone        None, or {"weights": spec, "sha256": digest} when the frozen backbone is left out: it is
                    reloaded from the spec and verified against the digest
    tasks           the tasks the model predicts ({name, kind, labels, title}; labels in logit order)
    preprocess      input_size, mean, std, paradigm, and the prepare settings (detector, margin, crop size,
                    frame sampling, alignment, flow method and flow alignment,
                    clip frames)
    config          the resolved run configuration
    fold, epoch     where it comes from
    provenance      what the model was trained on (unmask.provenance)
    calibration     temperatures per task, fitted on the validation subjects (unmask.calibration)
    ood             the "unlike the training faces" statistics and threshold (unmask.ood)

Checkpoints from before the last three were recorded load with ``{"known": False}`` in each.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import unmask
from unmask.errors import UnmaskError
from unmask.io import atomic_torch_save
from unmask.tasks import tasks_to_list

if TYPE_CHECKING:
    import torch

FORMAT = "unmask.checkpoint"


def save_checkpoint(path: str | Path, model: Any, *, config: dict, preprocess: dict, include_backbone: bool,
                    extra: dict | None = None, backbone_sha256: str | None = None) -> Path:
    """``backbone_sha256``: the frozen backbone's ``state_digest`` when the caller has it (the folds of a run
    share one backbone; hashing 86M parameters per fold costs about a second)."""
    from unmask.models.inference import state_digest

    state = model.state_dict()
    backbone = None
    if not include_backbone:
        state = {k: v for k, v in state.items() if not k.startswith("backbone.")}
        backbone = {"weights": config["model"]["weights"], "sha256": backbone_sha256 or state_digest(model.backbone)}
    ckpt = {
        "format": FORMAT, "version": 1, "unmask_version": unmask.__version__,
        "model_args": dict(model.model_args), "state_dict": state, "backbone": backbone,
        "tasks": tasks_to_list(model.tasks), "preprocess": preprocess, "config": config, **(extra or {}),
    }
    return atomic_torch_save(ckpt, path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Return ``(model, checkpoint_dict)``; the model is in eval mode on ``device``."""
    from unmask.models import create_model
    from unmask.models.inference import state_digest
    from unmask.models.weights import restoring_checkpoint, torch_load_safe

    path = Path(path)
    if path.is_dir() and (path / "checkpoint.pt").is_file():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise UnmaskError(f"checkpoint not found: {path}")
    ckpt = torch_load_safe(path, "unmask checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UnmaskError(f"{path} is not an unmask checkpoint (no '{FORMAT}' format tag)")
    args = dict(ckpt["model_args"])
    if ckpt.get("backbone"):
        args["weights"] = ckpt["backbone"]["weights"]
    model: Any  # an unmask model: an nn.Module with backbone, tasks and model_args
    if ckpt.get("backbone"):  # a frozen backbone left out of the file: loaded from its weights spec
        model = create_model(**args)
    else:
        with restoring_checkpoint():  # every weight comes from the file below: no "random init" warning
            model = create_model(**args)
    if ckpt.get("backbone"):
        digest = state_digest(model.backbone)
        if digest != ckpt["backbone"]["sha256"]:
            raise UnmaskError(
                f"{path}: the backbone weights {args['weights']!r} differ from those the model was trained with "
                f"(sha256 {digest[:12]} != {ckpt['backbone']['sha256'][:12]})")
    state = ckpt["state_dict"]
    expected: Iterable[str] = model.state_dict().keys()
    if ckpt.get("backbone"):
        expected = [k for k in expected if not k.startswith("backbone.")]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise UnmaskError(f"{path}: checkpoint does not fit the model", [f"missing: {k}" for k in missing]
                          + [f"unexpected: {k}" for k in unexpected])
    model.load_state_dict(state, strict=not ckpt.get("backbone"))
    from unmask.trust import read_trust_fields

    ckpt.update(read_trust_fields(ckpt))  # provenance, calibration, ood: {"known": False} when not recorded
    return model.to(device).eval(), ckpt
