"""MFED (masked facial expression database) -> manifest.

MFED's annotation sheet is not public, so its layout is not hard-coded: a small YAML mapping names the
sheet's columns (example: ``configs/sources/mfed_mapping.example.yaml``).
``unmask import mfed SHEET --mapping MAP.yaml --videos DIR --out manifest.csv`` (alias: ``import-mfed``)::

    sheet: 0                     # optional: xlsx sheet name or 0-based index (default: the first); csv ignores it
    header_row: 1                # optional: 1-based row of the column names (default 1)
    frame_base: 0                # optional: 1 when the sheet counts frames from 1 (they are stored 0-based)
    columns:                     # sheet column names (required unless marked optional)
      subject: Subject
      filename: Filename
      true_emotion: Experienced emotion      # what the person feels
      disguised_emotion: Required expression # what the person was asked to show
      onset: OnsetFrame
      apex: ApexFrame
      offset: OffsetFrame
      clip_id: Clip                          # optional; default: the clip_id pattern below
    clip_id: "{subject}_{filename}"          # optional pattern for clip ids (characters outside A-Z a-z 0-9 . _ - +
                                             # become _)
    video: "sub{subject:02d}/{filename}.mp4" # optional: path of the video under DIR; glob characters allowed
                                             # ("{subject}/{filename}.*"); default: search DIR for a video whose
                                             # stem is the filename (an extension in the filename is dropped)

Patterns are Python format strings over the mapped fields (``subject``, ``filename``, ``true_emotion``,
``disguised_emotion``, ``onset``, ``apex``, ``offset``); ``{subject:02d}`` zero-pads a numeric value. When the
stem search finds the same file name for several subjects, the one under a folder named after the subject
(``01``, ``sub01``, ``s01``) is taken. The source declares two tasks: ``true`` (titled
"felt") and ``disguised`` ("shown"), single-label over the six emotions, in the manifest columns
``true_emotion`` and ``disguised_emotion`` (:data:`unmask.emotions.MFED_TASKS`); emotion names are normalised
by them (``Happy`` -> happiness).
Rows whose true and disguised emotions agree are kept and flagged congruent (``Manifest.masked()`` drops
them). Every problem (unknown column, unknown emotion, bad frame, video not found) is reported at once with
its sheet row number; nothing is written unless ``skip_invalid``.
"""

from __future__ import annotations

import argparse
import glob
import re
from dataclasses import dataclass
from pathlib import Path

from unmask.data.manifest import Clip, write_manifest
from unmask.data.sources._registry import ImportResult, Source, register_source
from unmask.emotions import MFED_TASKS
from unmask.errors import UnmaskError

FIELDS = ("subject", "filename", "true_emotion", "disguised_emotion", "onset", "apex", "offset")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass
class Mapping:
    columns: dict[str, str]
    sheet: str | int = 0
    header_row: int = 1
    frame_base: int = 0
    clip_id: str = "{subject}_{filename}"
    video: str | None = None


def load_mapping(source: str | Path | dict | None) -> Mapping:
    """A :class:`Mapping` from a YAML file path or an already-parsed dict; unknown keys are errors."""
    import yaml

    where = str(source) if not isinstance(source, dict) else "mapping"
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise UnmaskError(f"mapping file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise UnmaskError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise UnmaskError(f"{where}: expected a mapping with a 'columns' section")
    unknown = set(data) - {"columns", "sheet", "header_row", "frame_base", "clip_id", "video"}
    if unknown:
        raise UnmaskError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected columns, sheet, "
                          f"header_row, frame_base, clip_id, video")
    columns = data.get("columns") or {}
    if not isinstance(columns, dict):
        raise UnmaskError(f"{where}: 'columns' must map field names to sheet column names")
    problems = [f"columns: missing '{f}'" for f in FIELDS if f not in columns]
    problems += [f"columns: unknown field '{k}'; expected {', '.join(FIELDS)} or clip_id"
                 for k in columns if k not in (*FIELDS, "clip_id")]
    if problems:
        raise UnmaskError(f"{where}: bad column mapping", problems)
    return Mapping(columns={k: str(v) for k, v in columns.items()}, sheet=data.get("sheet", 0),
                   header_row=int(data.get("header_row", 1)), frame_base=int(data.get("frame_base", 0)),
                   clip_id=data.get("clip_id", "{subject}_{filename}"),
                   video=data.get("video"))


class _Value(str):
    """A sheet value that formats as text, or as a number with a numeric spec (``{subject:02d}``)."""

    def __format__(self, spec: str) -> str:
        if spec and spec[-1] in "dxXob":
            return format(int(float(self)), spec)
        return str.__format__(self, spec)


def read_sheet(path: str | Path, mapping: Mapping) -> list[tuple[int, dict[str, str]]]:
    """``[(sheet row number, {column: text})]`` for the non-empty rows of an xlsx or csv sheet."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UnmaskError(f"sheet not found: {path}")
    header = mapping.header_row - 1
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            frame = pd.read_excel(path, sheet_name=mapping.sheet, header=header, dtype=str)
        else:
            frame = pd.read_csv(path, header=header, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (ValueError, KeyError, OSError, pd.errors.ParserError) as e:
        raise UnmaskError(f"cannot read sheet {path}: {e}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [f"columns: '{f}' -> '{c}' is not a column of the sheet" for f, c in mapping.columns.items()
               if c not in frame.columns]
    if missing:
        raise UnmaskError(f"{path}: the mapping names unknown column(s); the sheet has: "
                          f"{', '.join(frame.columns)}", missing)
    rows = []
    # Excel rows: header_row is the header, data starts on the next row (pandas keeps blank rows, so the
    # index stays aligned with the sheet).
    for i, record in enumerate(frame.fillna("").to_dict("records")):
        values = {c: str(record[c]).strip() for c in mapping.columns.values()}
        if any(values.values()):
            rows.append((mapping.header_row + 1 + i, values))
    return rows


def import_mfed(sheet: str | Path, mapping: str | Path | dict | None, videos: str | Path, out: str | Path | None = None, *, skip_invalid: bool = False) -> ImportResult:
    """Turn an MFED-style sheet into a manifest written at ``out`` (when given).

    Raises :class:`UnmaskError` listing every problem unless ``skip_invalid`` (then bad rows are left out and
    listed in ``result.problems``).
    """
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    videos = Path(videos)
    if not videos.is_dir():
        raise UnmaskError(f"video folder not found: {videos}")
    sheet = Path(sheet)
    rows = read_sheet(sheet, mapping)
    index = None if mapping.video else _index_videos(videos)
    problems, clips, seen = [], [], {}
    for line, values in rows:
        v = {f: values[c] for f, c in mapping.columns.items()}

        def bad(field_name: str, message: str, line: int = line) -> None:  # bound now: one closure per row
            problems.append(f"{sheet}:{line}: column '{mapping.columns[field_name]}': {message}")

        n_before = len(problems)
        for f in ("subject", "filename"):
            if not v[f]:
                bad(f, f"empty {f}")
        labels = {}
        for task in MFED_TASKS:
            try:
                labels[task.name] = task.normalize(v[task.column])
            except UnmaskError as e:
                bad(task.column, str(e))
        frames = {}
        for f in ("onset", "apex", "offset"):
            try:
                x = float(v[f]) - mapping.frame_base
                if x < 0 or x != int(x):
                    raise ValueError
                frames[f] = int(x)
            except ValueError:
                bad(f, f"expected an integer frame index >= {mapping.frame_base}, got {v[f]!r}")
        if len(frames) == 3 and not frames["onset"] <= frames["apex"] <= frames["offset"]:
            bad("apex", f"onset <= apex <= offset violated ({frames['onset']}, {frames['apex']}, {frames['offset']})")
        if len(problems) > n_before:
            continue
        fmt = {f: _Value(x) for f, x in v.items()}
        video, why = _find_video(videos, mapping, fmt, index)
        if video is None:
            bad("filename", why)
        clip_id = v.get("clip_id") or _format(mapping.clip_id, fmt, "clip_id")
        clip_id = re.sub(r"[^A-Za-z0-9._+-]", "_", clip_id)
        if clip_id in seen:
            problems.append(f"{sheet}:{line}: duplicate clip id {clip_id!r} (first on row {seen[clip_id]}); "
                            f"map a clip_id column or set a clip_id pattern")
        seen.setdefault(clip_id, line)
        if len(problems) == n_before:
            clips.append(Clip(clip_id=clip_id, subject=v["subject"], video=video, labels=labels, row=line,
                              congruent=labels["true"] == labels["disguised"], **frames))
    if not rows:
        problems.append(f"{sheet}: no data rows")
    if problems and not skip_invalid:
        raise UnmaskError(f"{len(problems)} problem(s) in {sheet}", problems)
    result = ImportResult(None, clips, problems)
    if out is not None:
        result.out = write_manifest(clips, out, MFED_TASKS)
    return result


def _format(pattern: str, values: dict, what: str) -> str:
    try:
        return pattern.format(**values)
    except (KeyError, IndexError, ValueError) as e:
        raise UnmaskError(f"mapping: cannot fill the {what} pattern {pattern!r} ({type(e).__name__}: {e}); "
                          f"fields: {', '.join(values)}") from None


def _index_videos(root: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file():
            index.setdefault(p.stem.lower(), []).append(p)
    return index


def _find_video(root: Path, mapping: Mapping, values: dict, index) -> tuple[Path | None, str]:
    if mapping.video:
        rel = _format(mapping.video, values, "video")
        if glob.has_magic(rel):
            found = sorted(Path(p) for p in glob.glob(str(root / rel)) if Path(p).is_file())
            if len(found) == 1:
                return found[0], ""
            return None, (f"no video matches {root / rel}" if not found else
                          f"{len(found)} videos match {root / rel}: {', '.join(p.name for p in found[:3])}")
        path = root / rel
        return (path, "") if path.is_file() else (None, f"video not found: {path}")
    name = str(values["filename"])
    stem = Path(name).stem if Path(name).suffix.lower() in VIDEO_SUFFIXES else name
    found = index.get(stem.lower(), [])
    if len(found) > 1:  # the same file name for several subjects: take the subject's folder
        subject = str(values["subject"])
        core = rf"0*{int(subject)}" if subject.isdigit() else re.escape(subject)
        own = re.compile(rf"^(?:.*\D)?{core}$", re.IGNORECASE)  # 01, sub01, s1; not sub101
        mine = [p for p in found if any(own.match(part) for part in p.relative_to(root).parent.parts)]
        if not mine:
            return None, (f"{len(found)} videos named {stem}.* under {root}, none in a folder named after subject "
                          f"{subject}; set a 'video' pattern in the mapping")
        found = mine
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"no video named {stem}.* under {root}"
    return None, (f"{len(found)} videos named {stem}.* under {root} ({', '.join(str(p) for p in found[:3])}); "
                  f"set a 'video' pattern in the mapping")


@register_source
class MFED(Source):
    name = "mfed"
    help = "an MFED-style annotation sheet (xlsx or csv) and its video folder, through a column mapping"
    tasks = MFED_TASKS

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("sheet", help="annotation sheet (.xlsx or .csv)")
        parser.add_argument("--mapping", required=True, help="YAML naming the sheet's columns "
                            "(see configs/sources/mfed_mapping.example.yaml)")
        parser.add_argument("--videos", required=True, help="folder holding the videos")

    def run(self, args: argparse.Namespace, out: str | Path | None, *, skip_invalid: bool = False) -> ImportResult:
        return import_mfed(args.sheet, args.mapping, args.videos, out, skip_invalid=skip_invalid)

    def describe(self, result: ImportResult) -> str:
        return f"wrote {len(result.clips)} clip(s) ({result.congruent} congruent, flagged) to {result.out}"
