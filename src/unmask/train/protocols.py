"""Subject-independent evaluation protocols: LOSO, k-fold by subject, a fixed split from a file.

A :class:`Fold` names its train, validation and test subjects. Validation subjects (for early stopping)
are drawn from the fold's training subjects, seeded, so the test subject never influences model selection.
``validation="test_subject"`` reproduces the common (optimistic) practice of selecting epochs on the test
subject; it exists only as an explicit option and every report then carries a warning.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from unmask.errors import UnmaskError


@dataclass(frozen=True)
class Fold:
    name: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    optimistic: bool = False  # validation on the test subjects

    def check(self) -> None:
        """Raise if a subject is in two of train / val / test (val == test is allowed only when optimistic)."""
        tr, va, te = set(self.train), set(self.val), set(self.test)
        overlaps = [("train", "test", tr & te), ("train", "validation", tr & va)]
        if not self.optimistic:
            overlaps.append(("validation", "test", va & te))
        for a, b, common in overlaps:
            if common:
                raise AssertionError(f"fold {self.name}: subject(s) {sorted(common)} in both {a} and {b}")
        if not te:
            raise AssertionError(f"fold {self.name}: no test subject")


def _draw_validation(train: list[str], n: int, rng: random.Random, fold: str) -> tuple[list[str], list[str]]:
    if n >= len(train):
        raise UnmaskError(
            f"fold {fold}: cannot hold out {n} validation subject(s) from {len(train)} training subject(s); "
            "lower protocol.val_subjects or use more subjects")
    val = sorted(rng.sample(sorted(train), n))
    return [s for s in train if s not in val], val


def make_folds(subjects: list[str], *, name: str = "loso", k: int = 5, split_file: str | Path = "",
               validation: str = "subjects", val_subjects: int = 1, seed: int = 0,
               only: list[str] | None = None) -> list[Fold]:
    """Build the folds of a protocol over ``subjects``; ``only`` keeps the folds with those names."""
    subjects = sorted(set(subjects))
    if name == "split":
        folds = [_split_fold(split_file, subjects)]
    else:
        if name == "loso":
            groups = [[s] for s in subjects]
            names = subjects
        elif name == "kfold":
            if not 2 <= k <= len(subjects):
                raise UnmaskError(f"protocol.k={k}: need 2 <= k <= number of subjects ({len(subjects)})")
            order = subjects[:]
            random.Random(seed).shuffle(order)
            groups = [sorted(order[i::k]) for i in range(k)]
            names = [f"fold{i + 1:02d}" for i in range(k)]
        else:
            raise UnmaskError(f"unknown protocol {name!r}; expected loso, kfold or split")
        if len(subjects) < 2:
            raise UnmaskError(f"protocol {name} needs at least 2 subjects, found {len(subjects)}")
        folds = []
        for fname, test in zip(names, groups):
            train = [s for s in subjects if s not in test]
            if validation == "test_subject":
                folds.append(Fold(fname, tuple(train), tuple(test), tuple(test), optimistic=True))
            else:
                # one RNG per fold: the draw for a fold does not depend on which other folds run
                rng = random.Random(f"{seed}-{fname}")
                train, val = _draw_validation(train, val_subjects, rng, fname)
                folds.append(Fold(fname, tuple(train), tuple(val), tuple(test)))
    if only:
        known = {f.name for f in folds}
        unknown = [o for o in only if o not in known]
        if unknown:
            raise UnmaskError(f"unknown fold(s) {', '.join(unknown)}; folds are: {', '.join(sorted(known))}")
        folds = [f for f in folds if f.name in set(only)]
    for f in folds:
        f.check()
    return folds


def _split_fold(path: str | Path, subjects: list[str]) -> Fold:
    path = Path(path)
    if not str(path) or not path.is_file():
        raise UnmaskError(f"protocol.split_file not found: {path or '(empty)'}")
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"subject", "split"} <= set(reader.fieldnames):
            raise UnmaskError(f"{path}: expected columns subject,split")
        for i, row in enumerate(reader):
            split = (row["split"] or "").strip().lower()
            if split not in parts:
                raise UnmaskError(f"{path}:{i + 2}: column 'split': {row['split']!r} is not train, val or test")
            subject = (row["subject"] or "").strip()
            if subject not in subjects:
                raise UnmaskError(f"{path}:{i + 2}: column 'subject': {subject!r} is not in the manifest")
            parts[split].append(subject)
    if not parts["val"]:
        raise UnmaskError(f"{path}: no validation subjects (split=val); early stopping needs some")
    return Fold("split", tuple(parts["train"]), tuple(parts["val"]), tuple(parts["test"]))
