"""In-the-wild dynamic facial expression sets -> manifests: DFEW, FERV39k, MAFW (``unmask import dfew|ferv39k|mafw``).

Each adapter reads the dataset's *official* split lists, finds every clip (a folder of frame images, or a video
file with the clip's name), and writes one manifest row per clip with the task ``emotion`` (single-label).
The split becomes the protocol through the ``subject`` column, because these sets have no subject ids:

* **DFEW** (``ROOT/EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv``, header ``video_name,label``,
  labels 1-7 = happy, sad, neutral, angry, surprise, disgust, fear; 0 = multi-label, left out and counted;
  clips under ``ROOT/Clip/clip_224x224/<00001>/`` or the 16-frame or original-video folders). A clip's subject
  is the fold that tests it (``set_1`` ... ``set_5``), so ``protocol.name: loso`` is exactly the official
  5-fold protocol, and validation (``val_subjects: 1``) is one of the *other* folds: carved from the training
  part, never the test fold. The train lists are checked against the test lists (a clip in both the train and
  the test list of one fold, or labelled differently, is an error).
* **MAFW** (``ROOT/Train & Test Set/single/no_caption/set_{1..5}/{train,test}.txt``, lines ``00019.mp4 anger``,
  11 classes; clips under ``ROOT/data/frames/<00019>/`` or ``ROOT/data/clips/00019.mp4``): as DFEW.
* **FERV39k** (``ROOT/4_setups/All_scenes/{train,test}_All.csv``, lines ``<path> <Label>``, the path relative to
  ``ROOT/2_ClipsforFaceCrop``): one fixed split. Test clips get subject ``test``; training clips are dealt into
  10 seeded buckets ``train_0`` ... ``train_9`` (a CRC of the clip path, so the same on every machine), and a
  split file ``<manifest>.split.csv`` names ``train_9`` the validation part (``protocol.name: split``).

Every problem (a malformed row, an unknown label, a clip listed twice, a clip not found) is collected with its
file and line and reported at once; nothing is written unless ``--skip-invalid``.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unmask.data.manifest import Clip, write_manifest
from unmask.data.sources._registry import ImportResult, Source, register_source
from unmask.errors import UnmaskError
from unmask.tasks import Task

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")

#: DFEW's label numbers 1-7, in order (0 marks a multi-label clip).
DFEW_LABELS = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
_SEVEN_ALIASES = {"happiness": "happy", "sadness": "sad", "anger": "angry", "surprised": "surprise",
                  "disgusted": "disgust", "fearful": "fear"}
DFER7_TASK = Task("emotion", "single", DFEW_LABELS, title="emotion", aliases=_SEVEN_ALIASES)
MAFW_LABELS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
               "helplessness", "disappointment")
MAFW_TASK = Task("emotion", "single", MAFW_LABELS, title="emotion",
                 aliases={"angry": "anger", "happy": "happiness", "sad": "sadness"})
FERV_VAL_BUCKET, FERV_BUCKETS = 9, 10


@dataclass
class DFERImportResult(ImportResult):
    excluded: int = 0  # DFEW rows labelled 0 (multi-label), left out
    split_file: Path | None = None  # FERV39k: the split file written beside the manifest


def clip_index(folder: Path) -> dict[str, Path]:
    """Clip name (lower case) -> its frame folder or video, from ``folder`` and one level of sub-folders
    (DFEW's parts ``clip_224x224_part_N``). A frame folder wins over a video of the same name."""
    index: dict[str, Path] = {}
    if not folder.is_dir():
        raise UnmaskError(f"clip folder not found: {folder}")
    levels = [folder] + sorted(p for p in folder.iterdir() if p.is_dir() and not _is_clip_dir(p))
    for level in levels:
        for p in sorted(level.iterdir()):
            if p.is_dir():
                index.setdefault(p.name.lower(), p)
            elif p.suffix.lower() in VIDEO_SUFFIXES:
                index.setdefault(p.stem.lower(), p)
    return index


def _is_clip_dir(p: Path) -> bool:
    return any(q.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") for q in p.iterdir())


def safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text.strip("/\\")) or "_"


class _Rows:
    """Problems and rows of one import, each problem naming its file and line."""

    def __init__(self):
        self.problems: list[str] = []
        self.excluded = 0  # DFEW multi-label rows

    def bad(self, path: Path, line: int, message: str) -> None:
        self.problems.append(f"{path}:{line}: {message}")


def read_pairs(path: Path, rows: _Rows, *, header: tuple[str, str] | None) -> list[tuple[int, str, str]]:
    """``[(line, name, label)]`` from a two-column list: a CSV with ``header`` columns, or (``header=None``)
    whitespace- or comma-separated lines without a header."""
    if not path.is_file():
        raise UnmaskError(f"split list not found: {path}")
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        if header is not None:
            reader = csv.DictReader(f)
            names = [h.strip() for h in (reader.fieldnames or [])]
            if not set(header) <= set(names):
                raise UnmaskError(f"{path}: expected columns {', '.join(header)}; the header is {', '.join(names)}")
            for i, raw in enumerate(reader):
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
                if any(row.values()):
                    out.append((i + 2, row.get(header[0], ""), row.get(header[1], "")))
            return out
        for i, text in enumerate(f):
            parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
            if not parts:
                continue
            if len(parts) != 2:
                rows.bad(path, i + 1, f"expected 'NAME LABEL', got {text.strip()!r}")
                continue
            out.append((i + 1, parts[0], parts[1]))
    return out


def _finish(clips: list[Clip], rows: _Rows, out, task: Task, what: str, skip_invalid: bool) -> ImportResult:
    if not clips and not rows.problems:
        rows.problems.append(f"{what}: no clips listed")
    if rows.problems and not skip_invalid:
        raise UnmaskError(f"{len(rows.problems)} problem(s) in {what}", rows.problems)
    result = DFERImportResult(None, clips, rows.problems, excluded=rows.excluded)
    if out is not None:
        result.out = write_manifest(clips, out, (task,))
    return result


def _locate(index: dict[str, Path], name: str, where: Path) -> tuple[Path | None, str]:
    stem = Path(name).stem if Path(name).suffix.lower() in VIDEO_SUFFIXES else name
    for key in (stem.lower(), stem.lower().zfill(5)):
        if key in index:
            return index[key], ""
    return None, f"clip {name!r}: no frame folder or video named {stem} under {where}"


def import_folds(test_lists: list[Path], train_lists: list[Path | None], clips_dir: Path, task: Task, *,
                 header: tuple[str, str] | None, label_of: Callable[[str], str | None], name_of: Callable[[str], str], out: str | Path | None = None, skip_invalid: bool = False,
                 what: str = "split lists") -> ImportResult:
    """K-fold sets (DFEW, MAFW): a clip's subject is the fold whose *test* list holds it.

    ``label_of(text) -> label name | None`` (None: an excluded row, counted) raises UnmaskError for a bad
    label; ``name_of(text) -> clip name`` normalises the list's clip name.
    """
    rows = _Rows()
    index = clip_index(clips_dir)
    clips, first = [], {}
    fold_labels: list[dict[str, str]] = []
    for k, path in enumerate(test_lists, start=1):
        labels_k: dict[str, str] = {}
        for line, name_text, label_text in read_pairs(path, rows, header=header):
            try:
                name = name_of(name_text)
                label = label_of(label_text)
            except (UnmaskError, ValueError) as e:
                rows.bad(path, line, str(e))
                continue
            if label is None:
                rows.excluded += 1
                continue
            if name in first:
                rows.bad(path, line, f"clip {name!r} is already in a test list ({first[name]}); each clip is tested "
                                     "in exactly one fold")
                continue
            first[name] = f"{path}:{line}"
            video, why = _locate(index, name, clips_dir)
            if video is None:
                rows.bad(path, line, why)
                continue
            labels_k[name] = label
            clips.append(Clip(clip_id=safe_id(name), subject=f"set_{k}", video=video, labels={task.name: label},
                              onset=None, apex=None, offset=None, row=line))
        fold_labels.append(labels_k)
    everything = {n: lab for d in fold_labels for n, lab in d.items()}
    for k, path in enumerate(train_lists, start=1):
        if path is None:
            continue
        for line, name_text, label_text in read_pairs(path, rows, header=header):
            try:
                name, label = name_of(name_text), label_of(label_text)
            except (UnmaskError, ValueError) as e:
                rows.bad(path, line, str(e))
                continue
            if label is None:
                continue
            if name in fold_labels[k - 1]:
                rows.bad(path, line, f"clip {name!r} is in both the train and the test list of fold {k}")
            elif name in everything and everything[name] != label:
                rows.bad(path, line, f"clip {name!r} is labelled {label} here but {everything[name]} in its test list")
    return _finish(clips, rows, out, task, what, skip_invalid)


def _first_existing(*paths: Path) -> Path:
    for p in paths:
        if p.exists():
            return p
    return paths[0]


# --------------------------------------------------------------------------------------------------- DFEW
def dfew_label(text: str) -> str | None:
    try:
        value = int(float(text))
    except ValueError:
        raise UnmaskError(f"column 'label': expected a number 0-7, got {text!r}") from None
    if not 0 <= value <= 7 or value != float(text):
        raise UnmaskError(f"column 'label': expected a number 0-7 (0 = multi-label), got {text!r}")
    return None if value == 0 else DFEW_LABELS[value - 1]


def dfew_name(text: str) -> str:
    if not text.strip():
        raise UnmaskError("column 'video_name': empty")
    stem = Path(text.strip()).stem
    return f"{int(stem):05d}" if stem.isdigit() else stem


def import_dfew(root: str | Path, out: str | Path | None = None, *, splits: str | Path | None = None, clips: str | Path | None = None, folds: int = 5, skip_invalid: bool = False) -> ImportResult:
    root = Path(root)
    splits = Path(splits) if splits else root / "EmoLabel_DataSplit"
    clips = Path(clips) if clips else _first_existing(root / "Clip" / "clip_224x224", root / "Clip" / "clip_224x224_16f",
                                                      root / "Clip" / "original")
    tests = [splits / "test(single-labeled)" / f"set_{k}.csv" for k in range(1, folds + 1)]
    trains = [p if p.is_file() else None for p in (splits / "train(single-labeled)" / f"set_{k}.csv"
                                                   for k in range(1, folds + 1))]
    return import_folds(tests, trains, clips, DFER7_TASK, header=("video_name", "label"), label_of=dfew_label,
                        name_of=dfew_name, out=out, skip_invalid=skip_invalid, what=f"DFEW split lists in {splits}")


# --------------------------------------------------------------------------------------------------- MAFW
def import_mafw(root: str | Path, out: str | Path | None = None, *, splits: str | Path | None = None, clips: str | Path | None = None, folds: int = 5, skip_invalid: bool = False) -> ImportResult:
    root = Path(root)
    splits = Path(splits) if splits else root / "Train & Test Set" / "single" / "no_caption"
    clips = Path(clips) if clips else _first_existing(root / "data" / "frames", root / "data" / "clips")
    tests = [splits / f"set_{k}" / "test.txt" for k in range(1, folds + 1)]
    trains = [p if p.is_file() else None for p in (splits / f"set_{k}" / "train.txt" for k in range(1, folds + 1))]

    def name_of(text: str) -> str:
        return Path(text).stem

    return import_folds(tests, trains, clips, MAFW_TASK, header=None, label_of=MAFW_TASK.normalize, name_of=name_of,
                        out=out, skip_invalid=skip_invalid, what=f"MAFW split lists in {splits}")


# ------------------------------------------------------------------------------------------------ FERV39k
def ferv_bucket(path_text: str) -> int:
    return zlib.crc32(path_text.encode()) % FERV_BUCKETS


def import_ferv39k(root: str | Path, out: str | Path | None = None, *, splits: str | Path | None = None, clips: str | Path | None = None, skip_invalid: bool = False) -> ImportResult:
    root = Path(root)
    splits = Path(splits) if splits else root / "4_setups" / "All_scenes"
    clips_dir = Path(clips) if clips else root / "2_ClipsforFaceCrop"
    if not clips_dir.is_dir():
        raise UnmaskError(f"clip folder not found: {clips_dir}")
    rows, clips, seen = _Rows(), [], {}
    for part in ("train", "test"):
        path = splits / f"{part}_All.csv"
        for line, name, label_text in read_pairs(path, rows, header=None):
            try:
                label = DFER7_TASK.normalize(label_text)
            except UnmaskError as e:
                rows.bad(path, line, str(e))
                continue
            cid = safe_id(name)
            if cid in seen:
                rows.bad(path, line, f"clip {name!r} is listed twice (first at {seen[cid]})")
                continue
            seen[cid] = f"{path.name}:{line}"
            video = clips_dir / name
            if not (video.is_dir() or video.is_file()):
                rows.bad(path, line, f"clip {name!r}: no frame folder or video {video}")
                continue
            subject = "test" if part == "test" else f"train_{ferv_bucket(name)}"
            clips.append(Clip(clip_id=cid, subject=subject, video=video, labels={"emotion": label},
                              onset=None, apex=None, offset=None, row=line))
    result = _finish(clips, rows, out, DFER7_TASK, f"FERV39k split lists in {splits}", skip_invalid)
    if result.out is not None:
        result.split_file = write_ferv_split(result.out, sorted({c.subject for c in clips}))
    return result


def split_path(manifest: str | Path) -> Path:
    p = Path(manifest)
    return p.with_name(p.stem + ".split.csv")


def write_ferv_split(manifest: Path, subjects: list[str]) -> Path:
    """``<manifest>.split.csv`` (subject,split) for ``protocol.name: split``: bucket 9 of the training part
    validates, the official test list tests."""
    path = split_path(manifest)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["subject", "split"])
        for s in subjects:
            w.writerow([s, "test" if s == "test" else ("val" if s == f"train_{FERV_VAL_BUCKET}" else "train")])
    return path


# ------------------------------------------------------------------------------------------------ adapters
class _DFERSource(Source):
    default_splits = ""
    default_clips = ""
    importer = None  # the import_* function of the dataset, as a staticmethod

    def run(self, args, out, *, skip_invalid: bool = False) -> ImportResult:
        return self.importer(args.root, out, splits=args.splits, clips=args.clips, skip_invalid=skip_invalid)

    def add_arguments(self, parser) -> None:
        parser.add_argument("root", help="the dataset's folder as released")
        parser.add_argument("--splits", default=None, help=f"split lists folder (default: ROOT/{self.default_splits})")
        parser.add_argument("--clips", default=None, help=f"clip folder: one frame folder or video per clip "
                            f"(default: ROOT/{self.default_clips})")

    def describe(self, result: ImportResult) -> str:
        folds = sorted({c.subject for c in result.clips})
        text = f"wrote {len(result.clips)} clip(s) to {result.out} (subjects = folds: {', '.join(folds)})"
        if result.excluded:
            text += f"; left out {result.excluded} multi-label row(s) (label 0)"
        if result.split_file:
            text += f"; split file {result.split_file}"
        return text


@register_source
class DFEW(_DFERSource):
    name = "dfew"
    help = "DFEW: the 5-fold single-labeled split lists and the clip frame folders (or videos)"
    tasks = (DFER7_TASK,)
    default_splits = "EmoLabel_DataSplit"
    default_clips = "Clip/clip_224x224"
    importer = staticmethod(import_dfew)


@register_source
class MAFW(_DFERSource):
    name = "mafw"
    help = "MAFW: the 5-fold single-emotion split lists (11 classes) and the clip frame folders (or videos)"
    tasks = (MAFW_TASK,)
    default_splits = "Train & Test Set/single/no_caption"
    default_clips = "data/frames"
    importer = staticmethod(import_mafw)


@register_source
class FERV39k(_DFERSource):
    name = "ferv39k"
    help = "FERV39k: the train_All/test_All lists (7 classes) and the face-cropped clip frame folders"
    tasks = (DFER7_TASK,)
    default_splits = "4_setups/All_scenes"
    default_clips = "2_ClipsforFaceCrop"
    importer = staticmethod(import_ferv39k)
