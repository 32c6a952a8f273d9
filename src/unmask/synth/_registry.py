"""Synthetic kinds by name: ``unmask synth OUT --kind NAME`` runs the kind registered under NAME.

A kind is a :class:`SynthKind` subclass registered with :func:`register_kind`, as a dataset's adapter is
registered with :func:`unmask.data.sources.register_source`. It names itself, says in one line what it
writes, and ``run(args)`` turns the parsed ``unmask synth`` arguments into its generator's configuration and
writes the set. Kinds are listed in the order they were registered (the order ``unmask synth --help`` shows).
"""

from __future__ import annotations

import argparse

from unmask.errors import UnmaskError


class SynthKind:
    """Base class of a synthetic kind; subclasses set ``name`` and ``help`` and implement ``run``."""

    name: str = ""
    help: str = ""

    def run(self, args: argparse.Namespace) -> int:
        """Write the set the parsed ``unmask synth`` arguments ask for; the command's exit status."""
        raise NotImplementedError


_KINDS: dict[str, SynthKind] = {}


def register_kind(cls: type[SynthKind]) -> type[SynthKind]:
    """Class decorator: make the kind reachable by its ``name``."""
    if not cls.name or cls.name in _KINDS:
        raise ValueError(f"synthetic kind {cls.name!r}: a kind needs a name of its own")
    _KINDS[cls.name] = cls()
    return cls


def list_kinds() -> list[str]:
    return list(_KINDS)


def get_kind(name: str) -> SynthKind:
    if name not in _KINDS:
        raise UnmaskError(f"unknown synthetic kind {name!r}; known kinds: {', '.join(list_kinds())}")
    return _KINDS[name]
