"""Dataset sources: ``unmask import NAME ... --out manifest.csv`` through a registry of adapters.

``list_sources()`` names them, ``get_source(name)`` returns one (an unknown name lists the known ones), and
``register_source`` adds one (see :mod:`unmask.data.sources._registry`). Built in: ``mfed``; the in-the-wild
sources ``dfew``, ``ferv39k``, ``mafw`` (:mod:`unmask.data.sources.dfer`); the micro-expression sources ``casme2``,
``samm``, ``smic``, ``casme3``, ``megc2019`` (:mod:`unmask.data.sources.micro`).
"""

from unmask.data.sources import (  # noqa: E402,F401  (registers the built-in adapters)
    dfer,  # noqa: E402,F401  (dfew, ferv39k, mafw)
    mfed,
    micro,
)
from unmask.data.sources._registry import ImportResult, Source, get_source, list_sources, register_source

__all__ = ["ImportResult", "Source", "get_source", "list_sources", "register_source"]
