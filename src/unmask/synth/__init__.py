"""Synthetic datasets with known ground truth: ``unmask synth OUT --kind NAME`` through a registry of kinds.

Every generator lives here, apart from the real datasets' adapters (:mod:`unmask.data.sources`):

* :mod:`.face`: the cartoon face drawn from AU intensities, the renderer the masked, in-the-wild and micro kinds share;
* :mod:`.masked` (``--kind masked``): masked expressions, MFED-shaped, on that face;
* :mod:`.photo` (``--kind photo``): the same paradigm on real face photos, warped around their landmarks;
* :mod:`.dfer` (``--kind dfer``): in-the-wild dynamic expressions in DFEW's layout;
* :mod:`.micro` (``--kind micro``): micro-expressions with an ambiguous class pair.

``list_kinds()`` names the kinds, ``get_kind(name)`` returns one (an unknown name lists the known ones) and
``register_kind`` adds one (:mod:`._registry`; the built-in kinds: :mod:`.kinds`). Importing this package
imports no generator: each is imported when its kind runs.
"""

from unmask.synth import kinds  # noqa: F401  (registers the built-in kinds)
from unmask.synth._registry import SynthKind, get_kind, list_kinds, register_kind

__all__ = ["SynthKind", "get_kind", "list_kinds", "register_kind"]
