"""Source adapters by name: each turns one dataset's own annotation files into a manifest.

An adapter is a :class:`Source` subclass registered with :func:`register_source`. It declares the tasks its
manifest carries (:class:`unmask.tasks.Task`: name, kind, labels, column), the command-line arguments it
needs (``add_arguments``, shown by ``unmask import NAME --help``) and ``run(args, out, skip_invalid)``, which
writes the manifest. ``unmask import NAME ... --out manifest.csv`` is the same for every source.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from unmask.errors import UnmaskError
from unmask.tasks import Task


@dataclass
class ImportResult:
    out: Path | None
    clips: list = field(default_factory=list)  # unmask.data.manifest.Clip
    problems: list[str] = field(default_factory=list)  # rows left out with skip_invalid: "file:row: why"
    fixes: object = None  # sheet quirks fixed on the way, where a source records them (_micro.Fixes)
    fixes_path: Path | None = None  # where they were written, row by row

    @property
    def congruent(self) -> int:
        return sum(c.congruent for c in self.clips)


class Source:
    """Base class of a source adapter; subclasses set ``name``, ``help``, ``tasks`` and implement the rest."""

    name: str = ""
    help: str = ""
    tasks: tuple[Task, ...] = ()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The source's own arguments (``--out`` and ``--skip-invalid`` are added for every source)."""

    def run(self, args: argparse.Namespace, out: str | Path | None, *, skip_invalid: bool = False) -> ImportResult:
        """Write the manifest at ``out`` from the parsed ``args``; UnmaskError listing every bad row unless
        ``skip_invalid`` (then they are left out and listed in ``result.problems``)."""
        raise NotImplementedError

    def describe(self, result: ImportResult) -> str:
        """One line about what was written."""
        return f"wrote {len(result.clips)} clip(s) to {result.out}"


_SOURCES: dict[str, Source] = {}


def register_source(cls: type[Source]) -> type[Source]:
    """Class decorator: make the adapter reachable by its ``name``."""
    if not cls.name or cls.name in _SOURCES:
        raise ValueError(f"source {cls.name!r}: a source needs a name of its own")
    if not cls.tasks:
        raise ValueError(f"source {cls.name!r} declares no tasks")
    _SOURCES[cls.name] = cls()
    return cls


def list_sources() -> list[str]:
    return sorted(_SOURCES)


def get_source(name: str) -> Source:
    if name not in _SOURCES:
        raise UnmaskError(f"unknown source {name!r}; known sources: {', '.join(list_sources())}")
    return _SOURCES[name]
