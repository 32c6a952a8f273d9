"""How a training example is taken from a prepared clip: one key frame, or the clip's sampled frames."""

from __future__ import annotations

from unmask.errors import UnmaskError

#: ``apex`` / ``onset``: one crop per clip; ``clip``: the clip's sampled frames (``[T, 3, H, W]``);
#: ``clip_flow``: the sampled frames and, as one more frame, the onset-to-apex flow of a set prepared with
#: ``--flow`` (``[T + 1, 3, H, W]``, the flow uint8-encoded as :func:`unmask.data.flow.encode_flow` says).
PARADIGMS = ("apex", "onset", "clip", "clip_flow")
CLIP_PARADIGMS = ("clip", "clip_flow")  # several frames per example: a clip model


def check_paradigm(paradigm: str) -> str:
    if paradigm not in PARADIGMS:
        raise UnmaskError(f"unknown paradigm {paradigm!r}; expected one of {', '.join(PARADIGMS)}")
    return paradigm


def is_clip(paradigm: str) -> bool:
    """True when the paradigm gives several frames per example (the model is built with ``clip_input``)."""
    return paradigm in CLIP_PARADIGMS
