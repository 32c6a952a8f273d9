"""How a training example is taken from a prepared clip: one key frame, or the clip's sampled frames."""

from __future__ import annotations

from unmask.errors import UnmaskError

#: ``apex`` / ``onset``: one crop per clip; ``clip``: the clip's sampled frames (``[T, 3, H, W]``).
PARADIGMS = ("apex", "onset", "clip")


def check_paradigm(paradigm: str) -> str:
    if paradigm not in PARADIGMS:
        raise UnmaskError(f"unknown paradigm {paradigm!r}; expected one of {', '.join(PARADIGMS)}")
    return paradigm
