"""What the micro-expression sources share: their coding sheets, their AU strings, their frame folders.

The releases (CASME II, SAMM, SMIC, and the MEGC2019 composite of the three) ship frame folders
(``sub01/EP02_01f/img46.jpg``) and an xlsx coding sheet whose cells are typed by hand. The quirks seen in the
real sheets, and what we do with each (every fix is recorded per row in ``<manifest>.fixes.csv`` and counted
in the import's summary line):

- a missing apex written as ``/`` (or ``-``): the middle frame between onset and offset (``--missing-apex
  middle``, MEB's choice), or left empty (``empty``); SMIC annotates no apex at all;
- an offset of ``0`` (a few CASME II rows): the folder's last image;
- AU strings with sides, intensities and alternatives: ``R12`` -> 12, ``L1+2`` -> 1, 2, ``12B`` -> 12,
  ``4+7 or 4+5`` -> the first alternative (``--au-alternatives first``) or all of them (``union``); tokens
  that are not AU codes are dropped and named;
- AUs outside the configured AU set are dropped (counted);
- trailing spaces and mixed case in every cell; subjects written as integers (``1``, ``1.0``, ``006``);
- emotions outside the chosen classes (CASME II's fear and sadness for the 5-class task): row excluded and
  counted, not an error.

Sheet frame numbers are the numbers in the image names (``img46.jpg`` is frame 46); the manifest stores the
0-based position of that image in its folder (:func:`unmask.data.video.frame_folder`).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unmask.errors import UnmaskError
from unmask.tasks import Task

#: Default AU sets (MEDN.md): CASME II's, SAMM's, and a 12-AU cross-dataset set.
AU_SETS: dict[str, tuple[int, ...]] = {
    "casme2": (1, 2, 4, 7, 12, 14, 15, 17),
    "samm": (2, 4, 7, 12),
    "cross": (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17),
}
MISSING_MARKS = ("/", "-", "n/a", "na", "?")
_AU_TOKEN = re.compile(r"^(?:AU)?\s*([LRBU])?\s*(\d{1,2})\s*([A-E])?$", re.IGNORECASE)


def au_name(n: int) -> str:
    return f"AU{int(n):02d}"


def parse_au_set(text: str | tuple | list) -> tuple[int, ...]:
    """``casme2`` | ``samm`` | ``cross`` | ``1,2,4`` (or a list of ints) -> sorted AU numbers."""
    if isinstance(text, (tuple, list)):
        values = [int(x) for x in text]
    elif str(text).strip().lower() in AU_SETS:
        return AU_SETS[str(text).strip().lower()]
    else:
        try:
            values = [int(x.strip().upper().removeprefix("AU")) for x in str(text).split(",") if x.strip()]
        except ValueError:
            raise UnmaskError(f"AU set {text!r}: expected one of {', '.join(AU_SETS)} or numbers such as 1,2,4,12") from None
    if not values or len(set(values)) != len(values) or min(values) < 1:
        raise UnmaskError(f"AU set {text!r}: expected distinct positive AU numbers")
    return tuple(sorted(values))


def au_task(aus: tuple[int, ...], name: str = "aus") -> Task:
    """The multi-label AU task over ``aus`` (labels ``AU01``...; ``AU1`` and ``1`` are accepted spellings)."""
    labels = tuple(au_name(n) for n in aus)
    aliases = {**{f"au{n}": au_name(n) for n in aus}, **{str(n): au_name(n) for n in aus}}
    return Task(name, "multi", labels, column=name, title="action units", aliases=aliases)


def parse_aus(text: str, alternatives: str = "first") -> tuple[set[int], list[str]]:
    """An AU cell -> (AU numbers, the quirk rules it needed). ``alternatives``: ``first`` or ``union``."""
    rules: list[str] = []
    raw = "" if text is None else str(text)
    cell = raw.strip()
    if cell != raw:
        rules.append("spaces stripped")
    if cell.lower() in ("", "none", *MISSING_MARKS):
        return set(), rules
    options = re.split(r"\s+or\s+", cell, flags=re.IGNORECASE)
    if len(options) > 1:
        rules.append(f"alternatives ({alternatives})")
        if alternatives == "first":
            options = options[:1]
    found: set[int] = set()
    for option in options:
        for token in re.split(r"[+,;/&]|\s+", option):
            if not token:
                continue
            m = _AU_TOKEN.match(token)
            if not m:
                rules.append(f"non-AU token {token!r} dropped")
                continue
            if m.group(1):
                rules.append("side prefix dropped")
            if m.group(3):
                rules.append("intensity letter dropped")
            found.add(int(m.group(2)))
    return found, rules


def norm_key(text: str) -> str:
    return re.sub(r"[\s_]+", "", str(text)).lower()


def clean_subject(text: str) -> tuple[str, bool]:
    """``"1"``, ``"1.0"``, ``" 006 "`` -> the subject as written without float noise; True when it changed."""
    s = str(text).strip()
    m = re.fullmatch(r"(\d+)\.0+", s)
    out = m.group(1) if m else s
    return out, out != str(text)


def read_coded_sheet(path: str | Path, columns: dict[str, tuple[str, ...]], sheet: str | int | None = None
                     ) -> list[tuple[int, dict[str, str]]]:
    """``[(sheet row number, {field: raw text})]`` from an xlsx/csv coding sheet.

    ``columns`` maps each field to the spellings its header may take (compared without case, spaces or
    underscores). The header row is found, not assumed: SAMM's sheet has title rows above it.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UnmaskError(f"coding sheet not found: {path}")
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            frame = pd.read_excel(path, sheet_name=0 if sheet is None else sheet, header=None, dtype=str)
        else:
            frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (ValueError, KeyError, OSError, pd.errors.ParserError) as e:
        raise UnmaskError(f"cannot read coding sheet {path}: {e}") from None
    rows = frame.fillna("").astype(str).values.tolist()
    for h, header in enumerate(rows[:50]):  # noqa: B007 (h is read after the break)
        keys = [norm_key(c) for c in header]
        where = {f: next((keys.index(norm_key(a)) for a in aliases if norm_key(a) in keys), None)
                 for f, aliases in columns.items()}
        if all(v is not None for v in where.values()):
            break
    else:
        wanted = "; ".join(f"{f}: {' or '.join(a)}" for f, a in columns.items())
        raise UnmaskError(f"{path}: no header row with the columns {wanted} in its first 50 rows")
    out = []
    for i, row in enumerate(rows[h + 1:], start=h + 2):  # 1-based sheet row numbers
        values = {f: row[j] if j < len(row) else "" for f, j in where.items()}
        if any(str(v).strip() for v in values.values()):
            out.append((i, values))
    return out


@dataclass
class Fixes:
    """The quirks fixed during one import: per row (for ``<manifest>.fixes.csv``) and counted per rule."""

    rows: list[tuple[str, int, str, str, str, str]] = field(default_factory=list)  # file,row,column,was,now,rule
    excluded: Counter = field(default_factory=Counter)  # why a row was left out on purpose -> count

    def add(self, where: str, row: int, column: str, was: str, now: str, rule: str) -> None:
        self.rows.append((where, row, column, was, now, rule))

    def counts(self) -> Counter:
        return Counter(r[5] for r in self.rows)

    def summary(self) -> str:
        parts = [f"{n} x {rule}" for rule, n in sorted(self.counts().items())]
        parts += [f"{n} row(s) excluded: {why}" for why, n in sorted(self.excluded.items())]
        return "; ".join(parts) if parts else "no quirks"

    def write(self, manifest: Path) -> Path:
        path = Path(manifest).with_name(Path(manifest).stem + ".fixes.csv")
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["file", "row", "column", "was", "now", "rule"])
            w.writerows(self.rows)
            w.writerows(("", "", "", "", n, f"excluded: {why}") for why, n in sorted(self.excluded.items()))
        return path


class FolderIndex:
    """Finds a clip's frame folder under a root: every folder holding images, by name."""

    def __init__(self, root: Path):
        from unmask.data.frame_folder import IMAGE_SUFFIXES

        self.root = Path(root)
        if not self.root.is_dir():
            raise UnmaskError(f"frame root not found: {self.root}")
        self.by_name: dict[str, list[Path]] = {}
        for folder, _, files in os.walk(self.root):
            if any(f.lower().endswith(IMAGE_SUFFIXES) for f in files):
                self.by_name.setdefault(Path(folder).name.lower(), []).append(Path(folder))

    def find(self, name: str, subject: str) -> tuple[Path | None, str]:
        found = sorted(self.by_name.get(name.strip().lower(), []))
        if len(found) > 1:  # the same clip name for several subjects: the one under the subject's folder
            core = rf"0*{int(subject)}" if subject.isdigit() else re.escape(subject)
            own = re.compile(rf"^(?:.*\D)?{core}$", re.IGNORECASE)
            found = [p for p in found if any(own.match(x) for x in p.relative_to(self.root).parent.parts)]
        if len(found) == 1:
            return found[0], ""
        if not found:
            return None, f"no frame folder named {name!r} under {self.root} (subject {subject})"
        return None, f"{len(found)} frame folders named {name!r} for subject {subject}: {', '.join(map(str, found[:3]))}"


def frame_index(numbers: list[int], value: str, column: str) -> int:
    """A sheet frame number -> the 0-based index of the image carrying it; ValueError naming the range."""
    n = float(str(value).strip())
    if n != int(n):
        raise ValueError(f"{column}: {value!r} is not an integer frame number")
    try:
        return numbers.index(int(n))
    except ValueError:
        raise ValueError(f"frame {int(n)} is not among the folder's images "
                         f"(numbers {numbers[0]}-{numbers[-1]})") from None


def is_missing(text: str) -> bool:
    t = str(text).strip().lower()
    return t == "" or t in MISSING_MARKS or (t == "nan")


def nan_safe(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)
