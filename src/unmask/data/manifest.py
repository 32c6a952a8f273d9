"""The manifest: one validated row per clip; the only thing the pipeline knows about a dataset.

CSV columns (``REQUIRED`` first, then the optional ``KEY_FRAMES``, one column per task, the rest optional)::

    clip_id, subject, video, onset, apex, offset, <task columns>, face_box, annotations, congruent

- The tasks (what each clip is labelled with; :mod:`unmask.tasks`) are declared in a sidecar file beside the
  manifest, ``<manifest>.tasks.yaml`` (``tasks: [{name, kind, labels, column, title}, ...]``), written by
  every source adapter and by ``unmask synth``. A manifest without one that has MFED's columns
  (``true_emotion``, ``disguised_emotion``) is read with MFED's tasks (:data:`unmask.emotions.MFED_TASKS`).

- ``video`` is a path relative to the manifest's folder (absolute paths are kept as they are): a video file, or
  a folder of numbered frame images (:mod:`unmask.data.frame_folder`).
- ``onset``, ``apex``, ``offset`` (optional columns, empty cells allowed) are 0-based frame indices with
  onset <= apex <= offset among those given. Sampling policies that need them (``prepare --frames keyframes``,
  ``span:T``) refuse rows without them; ``uniform:T`` (in-the-wild clips) does not need them.
- ``face_box`` (optional) is one box for the whole clip, ``"x y w h"`` in pixels.
- ``annotations`` (optional) is a per-frame CSV relative to the manifest, with a ``frame`` column, optional
  ``x, y, w, h`` face-box columns and optional action-unit columns named ``AU01``, ``AU12``, ...
- ``congruent`` (0/1) flags clips whose shown expression is the felt one (DSID trains on the others,
  ``data.masked_only``); without the column, a manifest read with MFED's tasks derives it.

Validation collects every problem at once, each naming the file, the row (the CSV line number, header = 1)
and the column.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from unmask.errors import UnmaskError
from unmask.tasks import Task, tasks_from_list, tasks_to_list

REQUIRED = ("clip_id", "subject", "video")
KEY_FRAMES = ("onset", "apex", "offset")
OPTIONAL = ("face_box", "annotations", "congruent")
AU_COLUMN = re.compile(r"^AU\d+$", re.IGNORECASE)
SAFE_ID = re.compile(r"^[A-Za-z0-9._+-]+$")


@dataclass(frozen=True)
class Clip:
    clip_id: str
    subject: str
    video: Path  # resolved (absolute or relative to the working directory)
    labels: dict  # task name -> label (single), tuple of labels (multi), or None (not annotated)
    onset: int | None  # None: not annotated
    apex: int | None
    offset: int | None
    face_box: tuple[int, int, int, int] | None = None
    annotations: Path | None = None
    congruent: bool = False
    row: int = 0  # CSV line number, for messages

    def frame_of(self, role: str) -> int | None:
        if role not in ("onset", "apex", "offset"):
            raise UnmaskError(f"unknown frame role {role!r}; expected onset, apex or offset")
        return getattr(self, role)


@dataclass
class Manifest:
    path: Path
    clips: list[Clip] = field(default_factory=list)
    tasks: tuple[Task, ...] = ()

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        return iter(self.clips)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def subjects(self) -> list[str]:
        return sorted({c.subject for c in self.clips})

    def masked(self) -> Manifest:
        """Only the clips not flagged congruent (masked expressions), as the DSID paradigms use."""
        return Manifest(self.path, [c for c in self.clips if not c.congruent], self.tasks)

    def by_id(self) -> dict[str, Clip]:
        return {c.clip_id: c for c in self.clips}


def _parse_box(text: str) -> tuple[int, int, int, int]:
    parts = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
    if len(parts) != 4:
        raise ValueError("expected four numbers 'x y w h'")
    x, y, w, h = (int(round(float(p))) for p in parts)
    if w <= 0 or h <= 0:
        raise ValueError("width and height must be positive")
    return x, y, w, h


def tasks_path(manifest_path: str | Path) -> Path:
    """Where a manifest's task declaration lives: ``manifest.csv`` -> ``manifest.tasks.yaml``."""
    p = Path(manifest_path)
    return p.with_name(p.stem + ".tasks.yaml")


def read_tasks(manifest_path: str | Path, header: list[str] | None = None) -> tuple[tuple[Task, ...], bool]:
    """The tasks a manifest declares, and whether they came from MFED's default (no sidecar file)."""
    from unmask.emotions import MFED_TASKS

    side = tasks_path(manifest_path)
    if side.is_file():
        try:
            data = yaml.safe_load(side.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise UnmaskError(f"{side} is not valid YAML: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("tasks"), list) or not data["tasks"]:
            raise UnmaskError(f"{side} must hold 'tasks:', a list of {{name, kind, labels, column}}")
        return tasks_from_list(data["tasks"]), False
    if header is not None and all(t.column in header for t in MFED_TASKS):
        return MFED_TASKS, True
    raise UnmaskError(f"manifest {manifest_path} declares no tasks: write {side.name} beside it "
                      f"(tasks: [{{name, kind: single|multi, labels: [...], column}}]) or make the manifest with "
                      f"`unmask import SOURCE`")


def write_tasks(tasks: Iterable[Task], manifest_path: str | Path) -> Path:
    side = tasks_path(manifest_path)
    side.write_text(yaml.safe_dump({"tasks": tasks_to_list(tasks)}, sort_keys=False), encoding="utf-8")
    return side


def read_manifest(path: str | Path, *, check_videos: bool = False, check_files: bool = True) -> Manifest:
    """Read and validate a manifest; raise :class:`UnmaskError` listing every problem found.

    ``check_files=False`` accepts rows whose video or annotations file is absent (a prepared set's copy of the
    manifest stays readable when the original videos are not on this machine).
    """
    manifest, problems = validate_manifest(path, check_videos=check_videos, check_files=check_files)
    if problems:
        raise UnmaskError(f"{len(problems)} problem(s) in manifest {path}", problems)
    return manifest


def validate_manifest(path: str | Path, *, check_videos: bool = True,
                      check_files: bool = True) -> tuple[Manifest, list[str]]:
    """Parse ``path`` and return the valid clips and the list of problems (empty when all is well).

    With ``check_videos`` each video is opened to check that it exists, decodes, and is long enough for the
    clip's offset frame.
    """
    path = Path(path)
    if not path.is_file():
        raise UnmaskError(f"manifest not found: {path}")
    problems: list[str] = []
    clips: list[Clip] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED if c not in header]
            if not missing:
                tasks, mfed_default = read_tasks(path, header)
                missing = [t.column for t in tasks if t.column not in header]
            if missing:
                raise UnmaskError(f"{path}: missing column(s) {', '.join(missing)}; header is {', '.join(header)}")
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise UnmaskError(f"{path}: not a UTF-8 CSV file ({e})") from None
    except csv.Error as e:
        raise UnmaskError(f"{path}: malformed CSV ({e})") from None

    seen: dict[str, int] = {}
    video_lengths: dict[Path, int | str] = {}
    for i, raw in enumerate(rows):
        line = i + 2
        row = {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in raw.items()}

        def bad(column: str, message: str, line: int = line) -> None:  # bound now: one closure per row
            problems.append(f"{path}:{line}: column '{column}': {message}")

        n_before = len(problems)
        clip_id = row.get("clip_id", "")
        if not clip_id:
            bad("clip_id", "empty clip id")
        elif not SAFE_ID.match(clip_id) or clip_id in (".", ".."):
            # Prepared clips are cached in a folder named after the id.
            bad("clip_id", f"clip id {clip_id!r} must be usable as a folder name (letters, digits, . _ - + only)")
        elif clip_id in seen:
            bad("clip_id", f"duplicate clip id {clip_id!r} (first on line {seen[clip_id]})")
        else:
            seen[clip_id] = line
        subject = row.get("subject", "")
        if not subject:
            bad("subject", "empty subject")
        labels = {}
        for task in tasks:
            try:
                labels[task.name] = task.parse(row.get(task.column, ""))
            except UnmaskError as e:
                bad(task.column, str(e))
        congruent = row.get("congruent", "")
        if congruent not in ("", "0", "1", "true", "false", "True", "False"):
            bad("congruent", f"expected 0 or 1, got {congruent!r}")
        elif congruent:
            congruent = congruent in ("1", "true", "True")
        elif mfed_default and len(labels) == len(tasks):
            congruent = labels["true"] == labels["disguised"]  # MFED's definition, for manifests without the column
        congruent = bool(congruent)
        frames: dict[str, int | None] = {}
        for col in KEY_FRAMES:
            text = row.get(col, "")
            if not text:
                frames[col] = None  # not annotated (in-the-wild clips have no key frames)
                continue
            try:
                value = int(text)
                if value < 0:
                    raise ValueError
                frames[col] = value
            except ValueError:
                bad(col, f"expected a non-negative integer frame index or nothing, got {text!r}")
        given = [(c, frames[c]) for c in KEY_FRAMES if frames.get(c) is not None]
        if len(frames) == 3 and any(a[1] > b[1] for a, b in zip(given, given[1:])):
            bad("apex" if frames["apex"] is not None else "offset",
                f"onset <= apex <= offset violated ({', '.join('' if frames[c] is None else str(frames[c]) for c in KEY_FRAMES)})")
        box = None
        if row.get("face_box"):
            try:
                box = _parse_box(row["face_box"])
            except ValueError as e:
                bad("face_box", f"{e} (got {row['face_box']!r})")
        annotations = None
        if row.get("annotations"):
            annotations = _resolve(path, row["annotations"])
            if check_files and not annotations.is_file():
                bad("annotations", f"file not found: {annotations}")
        video_text = row.get("video", "")
        video = _resolve(path, video_text) if video_text else None
        if video is None:
            bad("video", "empty video path")
        elif check_files and not (video.is_file() or video.is_dir()):  # a video file or a frame folder
            bad("video", f"video file or frame folder not found: {video}")
        elif check_files and check_videos:
            if video not in video_lengths:
                video_lengths[video] = _video_length(video)
            n = video_lengths[video]
            if isinstance(n, str):
                bad("video", f"cannot read video {video}: {n}")
            elif given and given[-1][1] >= n:
                col, last = given[-1]
                bad(col, f"frame {last} is beyond the video's length ({n} frames, last index {n - 1})")
        if len(problems) == n_before:
            clips.append(Clip(
                clip_id=clip_id, subject=subject, video=video, labels=labels,
                onset=frames["onset"], apex=frames["apex"], offset=frames["offset"],  # int or None
                face_box=box, annotations=annotations, congruent=congruent, row=line,
            ))
    if not rows:
        problems.append(f"{path}: the manifest has no rows")
    return Manifest(path, clips, tasks), problems


def _resolve(manifest_path: Path, text: str) -> Path:
    p = Path(text)
    return p if p.is_absolute() else manifest_path.parent / p


def _video_length(video: Path) -> int | str:
    from unmask.data.video import VideoError, probe

    try:
        return probe(video).num_frames
    except VideoError as e:
        return str(e)


def write_manifest(clips: Iterable[Clip], path: str | Path, tasks: Iterable[Task]) -> Path:
    """Write clips as a manifest CSV and its ``tasks`` as the sidecar declaration; paths are written relative to
    the manifest's folder when possible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def rel(p: Path | None) -> str:
        if p is None:
            return ""
        try:
            return Path(p).resolve().relative_to(path.parent.resolve()).as_posix()
        except ValueError:
            return str(Path(p).resolve())

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(REQUIRED + KEY_FRAMES + tuple(t.column for t in tasks) + OPTIONAL)
        for c in clips:
            w.writerow([
                c.clip_id, c.subject, rel(c.video), *("" if f is None else f for f in (c.onset, c.apex, c.offset)),
                *(t.format(c.labels.get(t.name)) for t in tasks),
                " ".join(map(str, c.face_box)) if c.face_box else "", rel(c.annotations), int(c.congruent),
            ])
    write_tasks(tasks, path)
    return path


def read_annotations(path: str | Path) -> dict[str, dict[int, tuple]]:
    """Read a per-frame annotation CSV: ``{"boxes": {frame: (x, y, w, h)}, "aus": {frame: {AU: value}}}``."""
    path = Path(path)
    if not path.is_file():
        raise UnmaskError(f"annotations file not found: {path}")
    boxes: dict[int, tuple] = {}
    aus: dict[int, dict[str, float]] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        for i, row in enumerate(reader):
            try:
                frame = int(row["frame"])
                if all(row.get(k) not in (None, "") for k in "xywh"):
                    boxes[frame] = tuple(int(round(float(row[k]))) for k in "xywh")
                au = {k.upper(): float(v) for k, v in row.items() if k and AU_COLUMN.match(k) and v not in ("", None)}
                if au:
                    aus[frame] = au
            except (KeyError, ValueError) as e:
                raise UnmaskError(f"{path}:{i + 2}: malformed annotation row ({e})") from None
    return {"boxes": boxes, "aus": aus}
