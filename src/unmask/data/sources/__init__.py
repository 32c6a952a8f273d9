"""Dataset sources: ``unmask import NAME ... --out manifest.csv`` through a registry of adapters.

``list_sources()`` names them, ``get_source(name)`` returns one (an unknown name lists the known ones), and
``register_source`` adds one (see :mod:`unmask.data.sources._registry`). Built in: ``mfed``, ``dfew``, ``ferv39k``, ``mafw``.
"""

from unmask.data.sources._registry import ImportResult, Source, get_source, list_sources, register_source
from unmask.data.sources import mfed  # noqa: E402,F401  (registers the built-in adapters)
from unmask.data.sources import dfer  # noqa: E402,F401  (dfew, ferv39k, mafw)

__all__ = ["ImportResult", "Source", "get_source", "list_sources", "register_source"]
