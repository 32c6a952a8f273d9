"""unmask.models: backbones (timm, open_clip), DSID and baselines, created by name.

>>> model = create_model("dsid", backbone="tiny_vit")
>>> out = model(torch.randn(2, 3, 64, 64))   # {"true_logits": [2, 6], "disguised_logits": [2, 6], ...}
"""

from __future__ import annotations

from typing import Any

from torch import nn

from unmask.errors import UnmaskError
from unmask.models import (  # noqa: F401  register their backbones and models  # noqa: F401  IFDD and the temporal baselines
    facex,
    fer,
    ifdd,
    medn,  # noqa: F401,E402  registers MEDN
    offtheshelf,
    temporal,
    video_backbones,  # noqa: F401,E402  registers mvit_xs, tiny_mvit_xs
)
from unmask.models._registry import (
    BACKBONES,
    MODELS,
    accepted_kwargs,
    register_backbone,
    register_model,
    takes_var_kwargs,
)
from unmask.models.adapters import Adapter, HeadModel
from unmask.models.backbones import Backbone, ClipBackbone, TimmBackbone, create_backbone, list_backbones
from unmask.models.baselines import DEFAULT_TEMPLATES, ClipLinearProbe, ClipZeroShot  # registers its models
from unmask.models.dsid import DSID, SingleStream  # registers its models
from unmask.models.multitask import MultiTask  # registers its model
from unmask.models.weights import parse_weights, read_checkpoint

__all__ = [
    "DEFAULT_TEMPLATES", "DSID", "Adapter", "Backbone", "ClipBackbone", "ClipLinearProbe", "ClipZeroShot",
    "HeadModel", "MultiTask", "SingleStream", "TimmBackbone", "create_backbone", "create_model", "list_backbones",
    "list_models", "backbone_frozen", "default_loss", "check_model_args", "parse_weights", "read_checkpoint", "register_backbone",
    "register_model",
]


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Create a registered model; unknown names or arguments raise UnmaskError listing the known ones."""
    return MODELS.call(name, **overrides)


def backbone_frozen(model: Any) -> bool:
    """True when no backbone parameter trains: the model's features can be computed once and cached."""
    return not any(p.requires_grad for p in model.backbone.parameters())


def default_loss(name: str) -> str:
    """The loss a registered model trains with by default, read from its factory's return type (no model is
    built): the class's ``default_loss``."""
    import typing

    return getattr(typing.get_type_hints(MODELS.get(name)).get("return"), "default_loss", "tasks")


def list_models() -> list[str]:
    return MODELS.names()


#: What every model factory receives from the run rather than from ``model.args``.
RUN_ARGS = ("tasks", "backbone", "weights", "mode", "clip_input")


def check_model_args(name: str, backbone: str, args: dict[str, Any]) -> None:
    """Check a config's ``model.args`` for model ``name`` against its factory's signature, and arguments the
    factory passes on to the backbone against the backbone's; an unknown one is an UnmaskError naming it."""
    fn = MODELS.get(name)
    own = [a for a in accepted_kwargs(fn) if a not in RUN_ARGS]
    taken = [a for a in args if a in RUN_ARGS]
    if taken:
        raise UnmaskError(f"model.args for {name!r}: {', '.join(taken)} are set by the run (model.backbone, "
                          f"model.weights, model.mode; tasks come from the data), not by model.args")
    rest = {k: v for k, v in args.items() if k not in own}
    if not rest:
        return
    if not takes_var_kwargs(fn):
        raise UnmaskError(f"unknown argument(s) for model {name!r}: {', '.join(sorted(rest))}; accepted: {', '.join(own)}")
    bb_fn = BACKBONES.get(backbone)
    bb_own = [a for a in accepted_kwargs(bb_fn) if a not in ("weights", "mode")]
    unknown = sorted(set(rest) - set(bb_own))
    if unknown:
        raise UnmaskError(f"unknown argument(s) for model {name!r} with backbone {backbone!r}: {', '.join(unknown)}; "
                          f"accepted: {', '.join(own)} (model), {', '.join(bb_own)} (backbone)")
