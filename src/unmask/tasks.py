"""Tasks: what a dataset asks of a model, declared once by the data and carried to the checkpoint.

A task has a name, a kind and its label names:

* ``single``: single-label classification over ``labels`` (MFED's ``true`` and ``disguised`` over the six
  emotions; DFEW's ``emotion`` over seven). Targets are class indices, ``-1`` where a clip has no label.
* ``multi``: multi-label over ``labels`` (action units). Targets are 0/1 vectors, NaN where a clip has no
  annotation (SMIC has no AU labels: its AU loss and metrics are masked).

``column`` names the manifest column the task is read from (default: the task's name); ``aliases`` maps
other spellings of a label to its canonical name (matching is case-insensitive anyway); ``title`` is how
people see it ("felt", "shown"). A task set travels as a list of plain dicts (:func:`tasks_to_list`) in
``prepare.json``, the run's ``summary.json`` and every checkpoint, so nothing downstream needs the source.

In a manifest, a single-label cell holds one label name; a multi-label cell holds labels joined by ``+``
(``AU1+AU4``), ``none`` for a clip with none of them; an empty cell is "not annotated".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from unmask.errors import UnmaskError

if TYPE_CHECKING:
    import numpy as np
    import torch

KINDS = ("single", "multi")
MISSING = ""  # an empty manifest cell: not annotated
NONE_ACTIVE = "none"  # a multi-label cell with no active label


@dataclass(frozen=True)
class Task:
    name: str
    kind: Literal["single", "multi"]
    labels: tuple[str, ...]
    column: str = ""
    title: str = ""
    aliases: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UnmaskError(f"task {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise UnmaskError(f"task {self.name!r}: labels must be a non-empty list of distinct names")
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        object.__setattr__(self, "column", self.column or self.name)
        object.__setattr__(self, "title", self.title or self.name)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def chance(self) -> float:
        """Accuracy of a uniform guess (single-label tasks)."""
        return 1.0 / len(self.labels)

    def normalize(self, value: object) -> str:
        """A spelling of one label -> its canonical name; UnmaskError listing the labels when unknown."""
        key = str(value).strip().lower().replace("_", " ").replace("-", " ")
        for label in self.labels:
            if key == label.lower().replace("_", " ").replace("-", " "):
                return label
        for alias, label in self.aliases.items():
            if key == alias.lower():
                return label
        raise UnmaskError(f"unknown label {value!r} for task '{self.name}'; expected one of: {', '.join(self.labels)}")

    def parse(self, cell: object) -> str | tuple[str, ...] | None:
        """A manifest cell -> a label (single), a sorted tuple of labels (multi), or None (not annotated)."""
        text = "" if cell is None or (isinstance(cell, float) and math.isnan(cell)) else str(cell).strip()
        if text == MISSING:
            return None
        if self.kind == "single":
            return self.normalize(text)
        if text.lower() == NONE_ACTIVE:
            return ()
        found = {self.normalize(part) for part in text.replace(";", "+").split("+") if part.strip()}
        return tuple(label for label in self.labels if label in found)

    def format(self, value: str | tuple[str, ...] | None) -> str:
        """The inverse of :meth:`parse`: what a manifest cell holds."""
        if value is None:
            return MISSING
        if self.kind == "single":
            return str(value)
        return "+".join(value) if value else NONE_ACTIVE

    def target(self, value: str | tuple[str, ...] | None) -> int | list[float]:
        """A parsed value -> the training target: a class index (-1 missing) or a 0/1 list (NaNs missing)."""
        if self.kind == "single":
            return -1 if value is None else self.labels.index(value)
        if value is None:
            return [math.nan] * len(self.labels)
        return [1.0 if label in value else 0.0 for label in self.labels]

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits ``[..., C]`` -> probabilities: softmax over classes (single), a sigmoid per label (multi)."""
        logits = logits.float()
        return logits.softmax(-1) if self.kind == "single" else logits.sigmoid()

    def predicted(self, probs: np.ndarray | torch.Tensor) -> str | tuple[str, ...]:
        """One row of probabilities ``[C]`` -> the top label (single) or the labels at >= 0.5 (multi)."""
        if self.kind == "single":
            return self.labels[int(probs.argmax())]
        return tuple(label for label, p in zip(self.labels, probs) if p >= 0.5)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "labels": list(self.labels), "column": self.column,
             "title": self.title}
        if self.aliases:
            d["aliases"] = dict(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Task:
        unknown = set(d) - {"name", "kind", "labels", "column", "title", "aliases"}
        if unknown or "name" not in d or "labels" not in d:
            raise UnmaskError(f"task declaration {d!r}: needs name, kind and labels"
                              + (f"; unknown key(s): {', '.join(sorted(unknown))}" if unknown else ""))
        return cls(name=str(d["name"]), kind=d.get("kind", "single"), labels=tuple(d["labels"]),
                   column=str(d.get("column") or ""), title=str(d.get("title") or ""),
                   aliases=dict(d.get("aliases") or {}))


def tasks_to_list(tasks: Iterable[Task]) -> list[dict]:
    return [t.to_dict() for t in tasks]


def tasks_from_list(items: Iterable[Task | dict]) -> tuple[Task, ...]:
    tasks = tuple(t if isinstance(t, Task) else Task.from_dict(t) for t in items)
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise UnmaskError(f"task names must be distinct, got {', '.join(names)}")
    return tasks


def task_by_name(tasks: Iterable[Task], name: str) -> Task:
    tasks = tuple(tasks)
    for t in tasks:
        if t.name == name:
            return t
    raise UnmaskError(f"unknown task {name!r}; this data's tasks: {', '.join(t.name for t in tasks)}")
