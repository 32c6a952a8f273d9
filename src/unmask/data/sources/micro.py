"""Micro-expression sources: ``unmask import casme2 | samm | casme3 | smic | megc2019``.

Each reads the release's own layout (frame folders and, for CASME II and SAMM, the xlsx coding sheet; the
quirks handled are listed in :mod:`unmask.data.sources._micro`) and writes a manifest whose ``video`` cells are
frame folders, with two tasks: ``emotion`` (single-label) and ``aus`` (multi-label over a configurable AU
set; SMIC codes no AUs, so a composite leaves its cells empty and the AU loss and metrics are masked there).

- **casme2**: ``CASME2-coding-*.xlsx`` (Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units,
  Estimated Emotion) + ``sub01/EP02_01f/img46.jpg``; 5 classes by default (happiness, disgust, repression,
  surprise, others; fear and sadness rows are excluded and counted), AU set ``casme2``.
- **samm**: ``SAMM_Micro_FACS_Codes_v2.xlsx`` (title rows above the header are skipped) +
  ``006/006_1_2/006_05562.jpg``; its 8 labels by default, AU set ``samm``.
- **casme3**: CAS(ME)^3 Part A's ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (sheet ``label``: Subject,
  Filename, Onset, Apex, Offset, AU, Objective class, emotion; frame numbers are the JPG indices) + the ME clip
  folders ``spNO.1_a_116/116.jpg`` or the full sequences ``spNO.1/a/color/``; 7 classes, or ``--classes 4|3``.
- **smic**: ``HS/s1/micro/negative/s1_ne_01/*.bmp``: the label is the folder, the clip is the whole folder
  (onset = first image, offset = last), no apex (``--missing-apex``), no AUs.
- **megc2019**: the MEGC2019 composite of the three: negative (CASME II disgust, repression; SAMM anger,
  contempt, disgust, fear, sadness; SMIC negative), positive (happiness), surprise; others excluded. This
  reproduces the standard counts (CASME II 145, SAMM 133, SMIC 164). Subjects and clips are prefixed with
  the dataset (``casme2_sub01``, ``samm_006``, ``smic_s1``), so LOSO runs over its 68 subjects.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unmask.data.manifest import Clip, write_manifest
from unmask.data.sources._micro import (
    AU_SETS,
    Fixes,
    FolderIndex,
    au_name,
    au_task,
    clean_subject,
    frame_index,
    is_missing,
    parse_au_set,
    parse_aus,
    read_coded_sheet,
)
from unmask.data.sources._registry import ImportResult, Source, register_source
from unmask.errors import UnmaskError
from unmask.tasks import Task

COLUMNS = {
    "subject": ("Subject", "Subject ID"),
    "filename": ("Filename", "File name", "Episode"),
    "onset": ("OnsetFrame", "Onset Frame", "Onset"),
    "apex": ("ApexFrame", "Apex Frame", "Apex"),
    "offset": ("OffsetFrame", "Offset Frame", "Offset"),
    "aus": ("Action Units", "AUs", "Action Unit", "AU"),
    "emotion": ("Estimated Emotion", "Emotion", "Objective Classes"),
}
CASME2_CLASSES = ("happiness", "disgust", "repression", "surprise", "others")
SAMM_CLASSES = ("anger", "contempt", "disgust", "fear", "happiness", "other", "sadness", "surprise")
MEGC_CLASSES = ("negative", "positive", "surprise")
MEGC_MAP = {
    "casme2": {"disgust": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise"},
    "samm": {"anger": "negative", "contempt": "negative", "disgust": "negative", "fear": "negative",
             "sadness": "negative", "happiness": "positive", "surprise": "surprise"},
    "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
}
SMIC_FOLDERS = {"negative": "negative", "positive": "positive", "surprise": "surprise"}


@dataclass
class Record:
    """One clip as read from a release, before its emotion is mapped to a task's classes."""

    clip_id: str
    subject: str
    folder: Path
    onset: int
    apex: int | None
    offset: int
    emotion: str  # as written, stripped, lower case
    aus: set | None  # AU numbers within the AU set; None: the dataset codes no AUs
    row: int


def read_coded(sheet: str | Path, frames: str | Path, *, dataset: str, subject_format: str, au_set: Any, fixes: Fixes, problems: list,
               missing_apex: str = "middle", alternatives: str = "first", sheet_name: str | int | None = None,
               locate: Any = None) -> list[Record]:
    """Records of a CASME II- or SAMM-style coding sheet and its frame folders (bad rows go to ``problems``).

    ``locate(index, subject, filename, values) -> (folder or None, why)`` finds a row's frame folder; by
    default the folder named as the row's Filename, under the subject's folder where the name repeats."""
    from unmask.data.video import VideoError, frame_numbers

    index = FolderIndex(Path(frames))
    allowed = set(au_set)
    records = []
    for row, v in read_coded_sheet(sheet, COLUMNS, sheet_name):
        def bad(column: str, message: str, row: int = row) -> None:  # bound now: one closure per row
            problems.append(f"{sheet}:{row}: column '{column}': {message}")

        subject, changed = clean_subject(v["subject"])
        if not subject:
            bad("subject", "empty subject")
            continue
        if subject.isdigit():
            written = subject
            subject = subject_format.format(int(subject))
            if written != subject or changed:
                fixes.add(str(sheet), row, "subject", v["subject"], subject, "integer subject -> folder name")
        filename = v["filename"].strip()
        if filename != v["filename"]:
            fixes.add(str(sheet), row, "filename", v["filename"], filename, "spaces stripped")
        folder, why = (locate or _by_filename)(index, subject, filename, v)
        if folder is None:
            bad("filename", why)
            continue
        try:
            numbers = frame_numbers(folder)
        except VideoError as e:
            bad("filename", str(e))
            continue
        frames, n_before = {}, len(problems)
        for col in ("onset", "apex", "offset"):
            text = v[col].strip()
            if col == "apex" and is_missing(text):
                frames[col] = None
                continue
            if col == "offset" and text in ("0", "0.0"):
                frames[col] = len(numbers) - 1
                fixes.add(str(sheet), row, col, text, str(numbers[-1]), "offset 0 -> last image")
                continue
            try:
                frames[col] = frame_index(numbers, text, col)
            except ValueError as e:
                bad(col, str(e) if "frame" in str(e) else f"expected a frame number, got {text!r}")
        if len(problems) > n_before:
            continue
        if frames["apex"] is None:
            if missing_apex == "middle":
                frames["apex"] = (frames["onset"] + frames["offset"]) // 2
                fixes.add(str(sheet), row, "apex", v["apex"], str(numbers[frames["apex"]]), "missing apex -> middle frame")
            else:
                fixes.add(str(sheet), row, "apex", v["apex"], "", "missing apex -> empty")
        given = [frames[c] for c in ("onset", "apex", "offset") if frames[c] is not None]
        if given != sorted(given):
            bad("apex", f"onset <= apex <= offset violated ({v['onset']}, {v['apex']}, {v['offset']})")
            continue
        aus, rules = parse_aus(v["aus"], alternatives)
        outside = sorted(aus - allowed)
        if outside:
            rules.append("AUs outside the set dropped")
        for rule in dict.fromkeys(rules):
            fixes.add(str(sheet), row, "aus", v["aus"], "+".join(au_name(a) for a in sorted(aus & allowed)), rule)
        emotion = v["emotion"].strip().lower()
        if v["emotion"] != v["emotion"].strip():
            fixes.add(str(sheet), row, "emotion", v["emotion"], emotion, "spaces stripped")
        clip_id = re.sub(r"[^A-Za-z0-9._+-]", "_", f"{subject}_{filename}")
        records.append(Record(clip_id, subject, folder, frames["onset"], frames["apex"], frames["offset"], emotion,
                              aus & allowed, row))
    return records


def _by_filename(index: FolderIndex, subject: str, filename: str, values: dict) -> tuple[Path | None, str]:
    return index.find(filename, subject)


def read_smic(root: str | Path, *, fixes: Fixes, problems: list, missing_apex: str = "middle") -> list[Record]:
    """Records of an SMIC(-HS) tree: ``.../s1/micro/negative/s1_ne_01/*.bmp``; the folder is the label."""
    from unmask.data.video import VideoError, frame_numbers

    index = FolderIndex(Path(root))
    records = []
    for _, folders in sorted(index.by_name.items()):
        for folder in folders:
            parts = [p.lower() for p in folder.relative_to(index.root).parts]
            if len(parts) < 2 or parts[-2] not in SMIC_FOLDERS or "non_micro" in parts:
                continue
            m = re.match(r"(s\d+)", folder.name, re.IGNORECASE) or next(
                (re.fullmatch(r"(s\d+)", p) for p in parts if re.fullmatch(r"s\d+", p)), None)
            if m is None:
                problems.append(f"{folder}: no subject (s1, s2, ...) in the folder's name or path")
                continue
            try:
                n = len(frame_numbers(folder))
            except VideoError as e:
                problems.append(str(e))
                continue
            apex = (n - 1) // 2 if missing_apex == "middle" else None
            fixes.add(str(folder), 0, "apex", "", "" if apex is None else str(apex),
                      f"SMIC codes no apex -> {'middle frame' if apex is not None else 'empty'}")
            records.append(Record(folder.name, m.group(1).lower(), folder, 0, apex, n - 1,
                                  SMIC_FOLDERS[parts[-2]], None, 0))
    if not records and not problems:
        problems.append(f"{root}: no SMIC clip folders (.../<negative|positive|surprise>/<clip>/<images>)")
    return records


def to_clips(records: list[Record], emotion: Task, aus: Task | None, mapping: dict | None, fixes: Fixes,
             dataset: str, prefix: str = "") -> list[Clip]:
    """Records -> manifest clips; an emotion outside the task's classes (or the mapping) excludes the row."""
    clips = []
    for r in records:
        label = mapping.get(r.emotion) if mapping is not None else None
        if mapping is None:
            try:
                label = emotion.normalize(r.emotion)
            except UnmaskError:
                label = None
        if label is None:
            fixes.excluded[f"{dataset} emotion {r.emotion!r} outside {', '.join(emotion.labels)}"] += 1
            continue
        labels = {emotion.name: label}
        if aus is not None:
            labels[aus.name] = None if r.aus is None else tuple(au_name(a) for a in sorted(r.aus))
        clips.append(Clip(prefix + r.clip_id, prefix + r.subject, r.folder, labels, r.onset, r.apex, r.offset,
                          row=r.row))
    return clips


def finish(clips: list, tasks: Sequence[Task], out: str | Path | None, fixes: Fixes, problems: list, skip_invalid: bool, what: str) -> ImportResult:
    if problems and not skip_invalid:
        raise UnmaskError(f"{len(problems)} problem(s) importing {what}", problems)
    if not clips:
        raise UnmaskError(f"no clips imported from {what}", problems)
    result = ImportResult(None, clips, problems)
    if out is not None:
        result.out = write_manifest(clips, out, tasks)
        result.fixes_path = fixes.write(result.out)
    result.fixes = fixes
    return result


def _common(parser, aus_default: str) -> None:
    parser.add_argument("--aus", default=aus_default,
                        help=f"AU set of the aus task: {', '.join(AU_SETS)} or numbers such as 1,2,4,12 "
                             f"(default {aus_default})")
    parser.add_argument("--missing-apex", choices=("middle", "empty"), default="middle",
                        help="a missing apex ('/'): the middle frame between onset and offset (default) or empty")
    parser.add_argument("--au-alternatives", choices=("first", "union"), default="first",
                        help="AU strings such as '4+7 or 4+5': keep the first alternative (default) or all")


class _Coded(Source):
    """CASME II and SAMM: a coding sheet and a frame root."""

    classes: tuple[str, ...] = ()
    aliases: dict[str, str] = {}
    au_default = "casme2"
    subject_format = "{}"

    def emotion_task(self, classes=None) -> Task:
        classes = tuple(classes or self.classes)
        aliases = {a: c for a, c in self.aliases.items() if c in classes}
        return Task("emotion", "single", classes, title="emotion", aliases=aliases)

    def add_arguments(self, parser) -> None:
        parser.add_argument("sheet", help="the release's coding sheet (.xlsx or .csv)")
        parser.add_argument("--frames", required=True, help="root of the frame folders")
        parser.add_argument("--classes", default=",".join(self.classes),
                            help=f"emotion classes kept, comma-separated; other rows are excluded and counted "
                                 f"(default {','.join(self.classes)})")
        parser.add_argument("--sheet-name", default=None, help="xlsx sheet (default: the first)")
        _common(parser, self.au_default)

    def run(self, args, out, *, skip_invalid: bool = False) -> ImportResult:
        classes, mapping = self.classes_and_mapping(args)
        emotion, aus = self.emotion_task(classes), au_task(parse_au_set(args.aus))
        fixes, problems = Fixes(), []
        records = read_coded(args.sheet, args.frames, dataset=self.name, subject_format=self.subject_format,
                             au_set=parse_au_set(args.aus), fixes=fixes, problems=problems,
                             missing_apex=args.missing_apex, alternatives=args.au_alternatives,
                             sheet_name=args.sheet_name, locate=self.locate)
        clips = to_clips(records, emotion, aus, mapping, fixes, self.name)
        return finish(clips, (emotion, aus), out, fixes, problems, skip_invalid, str(args.sheet))

    def classes_and_mapping(self, args) -> tuple[tuple[str, ...], dict | None]:
        """The emotion task's classes and the sheet label -> class mapping (None: the labels as written)."""
        return tuple(c.strip().lower() for c in args.classes.split(",") if c.strip()), None

    locate = None  # read_coded's default: the folder named as the row's Filename

    def describe(self, result: ImportResult) -> str:
        return (f"wrote {len(result.clips)} clip(s) of {len({c.subject for c in result.clips})} subject(s) to "
                f"{result.out}; fixed: {result.fixes.summary()} (row by row in {result.fixes_path})")


@register_source
class CASME2(_Coded):
    name = "casme2"
    help = "CASME II: coding sheet (xlsx/csv) + frame folders sub01/EP02_01f/img46.jpg"
    classes = CASME2_CLASSES
    aliases = {"other": "others", "happy": "happiness", "repressed": "repression"}
    au_default = "casme2"
    subject_format = "sub{:02d}"
    tasks = (Task("emotion", "single", CASME2_CLASSES), au_task(AU_SETS["casme2"]))


@register_source
class SAMM(_Coded):
    name = "samm"
    help = "SAMM: FACS coding sheet (xlsx/csv; title rows skipped) + frame folders 006/006_1_2/006_05562.jpg"
    classes = SAMM_CLASSES
    aliases = {"others": "other", "happy": "happiness", "angry": "anger", "sad": "sadness"}
    au_default = "samm"
    subject_format = "{:03d}"
    tasks = (Task("emotion", "single", SAMM_CLASSES), au_task(AU_SETS["samm"]))


#: CAS(ME)^3 Part A's seven labels and the groupings used on it (4 classes: positive / negative / surprise /
#: others, as in MEGC2022's composite; 3 classes: the MEGC2019 mapping, others excluded).
CASME3_CLASSES = ("happy", "disgust", "fear", "anger", "sad", "surprise", "others")
CASME3_GROUPS = {
    "7": {c: c for c in CASME3_CLASSES},
    "4": {"happy": "positive", "disgust": "negative", "fear": "negative", "anger": "negative", "sad": "negative",
          "surprise": "surprise", "others": "others"},
    "3": {"happy": "positive", "disgust": "negative", "fear": "negative", "anger": "negative", "sad": "negative",
          "surprise": "surprise"},
}
CASME3_ALIASES = {"happiness": "happy", "sadness": "sad", "angry": "anger", "other": "others", "surprised": "surprise",
                  "disgusted": "disgust", "fearful": "fear"}


def _casme3_folder(index: FolderIndex, subject: str, filename: str, values: dict) -> tuple[Path | None, str]:
    """Part A's ME clip release names a clip's folder ``<Subject>_<Filename>_<Onset>`` (``spNO.10_a_116``,
    JPG-indexed frames); the full release keeps each sequence in ``<Subject>/<Filename>/`` (its images directly
    or in ``color/``, beside ``depth/``), and the row's onset..offset is cut from it."""
    onset = str(values["onset"]).strip()
    onset = onset[:-2] if onset.endswith(".0") else onset
    name = f"{subject}_{filename}_{onset}"
    found = index.by_name.get(name.lower(), [])
    if len(found) == 1:
        return found[0], ""
    if len(found) > 1:
        return None, f"{len(found)} frame folders named {name!r}: {', '.join(map(str, found[:3]))}"
    for folder in (index.root / subject / filename / "color", index.root / subject / filename):
        if folder in index.by_name.get(folder.name.lower(), []):  # a folder holding images
            return folder, ""
    return None, (f"no frame folder {name!r} (the ME clip release) nor {subject}/{filename}[/color] (the full "
                  f"release) under {index.root}")


@register_source
class CASME3(_Coded):
    name = "casme3"
    help = ("CAS(ME)^3 Part A: cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx + the ME clip frame folders "
            "(frame/spNO.1_a_116/116.jpg) or the full sequences (spNO.1/a/color/)")
    classes = CASME3_CLASSES
    aliases = CASME3_ALIASES
    au_default = "cross"
    tasks = (Task("emotion", "single", CASME3_CLASSES), au_task(AU_SETS["cross"]))
    locate = staticmethod(_casme3_folder)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("sheet", help="the release's label sheet (cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx)")
        parser.add_argument("--frames", required=True, help="root of the frame folders (e.g. Part_A_ME_clip/frame)")
        parser.add_argument("--classes", choices=tuple(CASME3_GROUPS), default="7",
                            help="7: the sheet's labels (default); 4: positive / negative / surprise / others; "
                                 "3: positive / negative / surprise (others excluded)")
        parser.add_argument("--sheet-name", default="label", help="xlsx sheet (default: label)")
        _common(parser, self.au_default)

    def classes_and_mapping(self, args: argparse.Namespace) -> tuple[tuple[str, ...], dict | None]:
        group = CASME3_GROUPS[args.classes]
        mapping = {**group, **{a: group[c] for a, c in CASME3_ALIASES.items() if c in group}}
        return tuple(dict.fromkeys(group.values())), mapping


@register_source
class SMIC(Source):
    name = "smic"
    help = "SMIC(-HS): frame folders s1/micro/<negative|positive|surprise>/s1_ne_01/*.bmp (no AUs, no apex)"
    tasks = (Task("emotion", "single", MEGC_CLASSES),)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("root", help="the SMIC tree (e.g. SMIC_all_raw/HS)")
        parser.add_argument("--missing-apex", choices=("middle", "empty"), default="middle",
                            help="SMIC codes no apex: the middle frame (default) or empty")

    def run(self, args: argparse.Namespace, out: str | Path | None, *, skip_invalid: bool = False) -> ImportResult:
        fixes, problems = Fixes(), []
        records = read_smic(args.root, fixes=fixes, problems=problems, missing_apex=args.missing_apex)
        clips = to_clips(records, self.tasks[0], None, None, fixes, self.name)
        return finish(clips, self.tasks, out, fixes, problems, skip_invalid, str(args.root))

    describe = _Coded.describe


@register_source
class MEGC2019(Source):
    name = "megc2019"
    help = "MEGC2019 composite: CASME II + SAMM + SMIC-HS as negative/positive/surprise, 68 subjects"
    tasks = (Task("emotion", "single", MEGC_CLASSES), au_task(AU_SETS["cross"]))

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--casme2-sheet", help="CASME II coding sheet")
        parser.add_argument("--casme2-frames", help="CASME II frame root")
        parser.add_argument("--samm-sheet", help="SAMM coding sheet")
        parser.add_argument("--samm-frames", help="SAMM frame root")
        parser.add_argument("--smic", help="SMIC-HS frame tree")
        _common(parser, "cross")

    def run(self, args: argparse.Namespace, out: str | Path | None, *, skip_invalid: bool = False) -> ImportResult:
        au_set = parse_au_set(args.aus)
        emotion, aus = self.tasks[0], au_task(au_set)
        fixes, problems, clips, parts = Fixes(), [], [], []
        for ds, sheet, frames, fmt in (("casme2", args.casme2_sheet, args.casme2_frames, CASME2.subject_format),
                                       ("samm", args.samm_sheet, args.samm_frames, SAMM.subject_format)):
            if bool(sheet) != bool(frames):
                raise UnmaskError(f"megc2019: --{ds}-sheet and --{ds}-frames go together")
            if sheet:
                records = read_coded(sheet, frames, dataset=ds, subject_format=fmt, au_set=au_set, fixes=fixes,
                                     problems=problems, missing_apex=args.missing_apex,
                                     alternatives=args.au_alternatives)
                clips += to_clips(records, emotion, aus, MEGC_MAP[ds], fixes, ds, prefix=f"{ds}_")
                parts.append(ds)
        if args.smic:
            records = read_smic(args.smic, fixes=fixes, problems=problems, missing_apex=args.missing_apex)
            clips += to_clips(records, emotion, aus, MEGC_MAP["smic"], fixes, "smic", prefix="smic_")
            parts.append("smic")
        if not parts:
            raise UnmaskError("megc2019: give at least one of --casme2-sheet/--casme2-frames, "
                              "--samm-sheet/--samm-frames, --smic")
        result = finish(clips, (emotion, aus), out, fixes, problems, skip_invalid, "+".join(parts))
        result.parts = parts
        return result

    def describe(self, result: ImportResult) -> str:
        missing = [d for d in ("casme2", "samm", "smic") if d not in result.parts]
        note = f" (without {', '.join(missing)}: not the full composite)" if missing else ""
        return _Coded.describe(self, result) + note
