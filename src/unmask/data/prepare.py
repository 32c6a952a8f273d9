"""Prepare a manifest: decode the needed frames, find the face, crop, resize and cache each clip on disk.

``unmask prepare MANIFEST --out DIR`` (or :func:`prepare`) writes, and :class:`PreparedSet` reads::

    DIR/prepare.json          {"version": 1, "manifest": "<abs path of the source manifest>", "detector": name,
                               "size": int, "margin": float, "clip_frames": K, "unmask_version": "..."}
    DIR/manifest.csv          copy of the source manifest (video paths point to the original videos)
    DIR/clips/<clip_id>/onset.png, apex.png, offset.png      RGB face crops, size x size, lossless PNG
    DIR/clips/<clip_id>/clip_00.png ... clip_{K-1}.png       K frames sampled uniformly from onset to offset
                                                             (both included), in time order
    DIR/clips/<clip_id>/meta.json   {"clip_id", "frames": {"onset": i, "apex": i, "offset": i, "clip": [i, ...]},
                                     "boxes": {"<frame index>": [x, y, w, h]}, "box_source": {"<frame index>":
                                     detector name | "nearest:<frame index>"}, "detector": name}
                                    written last: its presence marks the clip finished
    DIR/failures.csv          clip_id,row,video,reason  (rewritten at the end of each run: its failures)

For each clip the video is decoded once, from the start up to the last needed frame. In each needed frame
the largest face is kept (with ``annotated``, the manifest's box). A frame where no face is found borrows the
box of the nearest frame that has one (``box_source`` says so), except onset and apex: without a face there,
the clip fails. Failed clips (missing or corrupt video, frame beyond the end, no face) are listed in
failures.csv and retried on the next run; finished clips are skipped. The crop settings are fixed per DIR:
a rerun with another detector, size, margin, K or manifest is refused rather than mixing crops.
"""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from unmask.data.manifest import Clip, Manifest, read_manifest, write_manifest
from unmask.tasks import tasks_to_list
from unmask.errors import UnmaskError

CACHE_VERSION = 1
ROLES = ("onset", "apex", "offset")
SETTINGS = ("manifest", "detector", "size", "margin", "clip_frames")  # must match to reuse a DIR


@dataclass(frozen=True)
class Failure:
    clip_id: str
    row: int
    video: str
    reason: str


@dataclass
class PrepareResult:
    out: Path
    detector: str
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)

    def summary(self) -> str:
        return (f"prepared {self.done} clips ({self.skipped} skipped as already done), {self.failed} failed; "
                f"failures in {self.out / 'failures.csv'}")


def clip_frame_indices(onset: int, offset: int, k: int) -> list[int]:
    """``k`` frame indices spread uniformly over ``[onset, offset]``, both ends included (repeats when the
    clip is shorter than ``k``)."""
    if k <= 0:
        return []
    if k == 1:
        return [int(round((onset + offset) / 2))]
    return [int(i) for i in np.rint(np.linspace(onset, offset, k))]


def planned_frames(clip: Clip, k: int) -> dict:
    return {"onset": clip.onset, "apex": clip.apex, "offset": clip.offset,
            "clip": clip_frame_indices(clip.onset, clip.offset, k)}


def prepare_clip(clip: Clip, out: Path, detector, *, size: int = 224, margin: float = 0.2,
                 clip_frames: int = 8) -> dict:
    """Prepare one clip into ``out/clips/<clip_id>/``; returns its meta. Raises UnmaskError on failure."""
    from unmask.data.faces import best_face, crop_face
    from unmask.data.video import read_frames

    frames = planned_frames(clip, clip_frames)
    needed = sorted({clip.onset, clip.apex, clip.offset, *frames["clip"]})
    images = read_frames(clip.video, needed)  # one decode, stops after the last needed frame
    boxes, source = {}, {}
    for i in needed:
        face = best_face(detector.detect(images[i], clip=clip, frame=i))
        if face is not None:
            boxes[i], source[i] = face.box, detector.name
    for role in ("onset", "apex"):
        if frames[role] not in boxes:
            raise UnmaskError(f"no face in the {role} frame {frames[role]} ({detector.name} detector)")
    for i in needed:
        if i not in boxes:
            # The face was found at onset and apex, so a miss in between is a detector slip, not an absence.
            j = min((j for j in source if source[j] == detector.name), key=lambda j: (abs(j - i), j))
            boxes[i], source[i] = boxes[j], f"nearest:{j}"

    folder = out / "clips" / clip.clip_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)  # the clip is unfinished until meta.json is back
    crops = {i: crop_face(images[i], boxes[i], margin=margin, size=size) for i in needed}
    names = [(f"{role}.png", frames[role]) for role in ROLES]
    names += [(f"clip_{k:02d}.png", i) for k, i in enumerate(frames["clip"])]
    for name, i in names:
        _write_png(folder / name, crops[i])
    meta = {"clip_id": clip.clip_id, "frames": frames,
            "boxes": {str(i): list(boxes[i]) for i in needed},
            "box_source": {str(i): source[i] for i in needed}, "detector": detector.name}
    _write_json(folder / "meta.json", meta)
    return meta


def prepare(manifest_path, out, *, detector: str = "auto", size: int = 224, margin: float = 0.2,
            clip_frames: int = 8, workers: int = 1, masked_only: bool = False,
            progress: bool = True) -> PrepareResult:
    """Prepare every clip of a manifest into ``out`` (layout in the module docstring); resumable."""
    import unmask
    from unmask.data.faces import resolve_detector_name

    if size < 1 or margin < 0 or clip_frames < 0 or workers < 1:
        raise UnmaskError(f"bad settings: size={size} (>= 1), margin={margin} (>= 0), "
                          f"clip_frames={clip_frames} (>= 0), workers={workers} (>= 1)")
    manifest_path = Path(manifest_path).resolve()
    # Missing videos become per-clip failures below, not an error for the whole manifest.
    manifest = read_manifest(manifest_path, check_files=False)
    clips = manifest.masked().clips if masked_only else manifest.clips
    out = Path(out)
    config = {"version": CACHE_VERSION, "manifest": str(manifest_path), "detector": resolve_detector_name(detector),
              "size": int(size), "margin": float(margin), "clip_frames": int(clip_frames),
              "unmask_version": unmask.__version__, "tasks": tasks_to_list(manifest.tasks)}
    _claim(out, config)
    write_manifest(manifest.clips, out / "manifest.csv", manifest.tasks)

    result = PrepareResult(out, config["detector"])
    todo = []
    for clip in clips:
        meta = out / "clips" / clip.clip_id / "meta.json"
        if meta.is_file() and _read_json(meta).get("frames") == planned_frames(clip, clip_frames):
            result.skipped += 1
        else:
            todo.append(clip)  # new, failed before, interrupted, or its frames changed in the manifest

    settings = {k: config[k] for k in ("detector", "size", "margin", "clip_frames")}
    for clip, reason in _run(todo, out, settings, workers, progress):
        if reason is None:
            result.done += 1
        else:
            result.failed += 1
            result.failures.append(Failure(clip.clip_id, clip.row, str(clip.video), reason))
    result.failures.sort(key=lambda f: f.row)
    _write_failures(out / "failures.csv", result.failures)
    return result


# --- running clips, in this process or a pool --------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(settings: dict, in_pool: bool) -> None:
    import signal

    import cv2

    from unmask.data.faces import create_detector

    if in_pool:
        # Ctrl-C is the parent's to handle (it cancels what is queued); the clip in hand finishes or is redone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cv2.setNumThreads(1)  # the pool is the parallelism; threads inside each worker only oversubscribe
    _WORKER.update(settings=settings, detector=create_detector(settings["detector"]))


def _work(clip: Clip, out: Path) -> tuple[Clip, str | None]:
    s = _WORKER["settings"]
    try:
        prepare_clip(clip, out, _WORKER["detector"], size=s["size"], margin=s["margin"],
                     clip_frames=s["clip_frames"])
    except UnmaskError as e:
        return clip, str(e)
    return clip, None


def _run(todo: list[Clip], out: Path, settings: dict, workers: int, progress: bool):
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="clip", desc="prepare", disable=not progress or not todo)
    try:
        if workers == 1 or len(todo) <= 1:
            _init_worker(settings, in_pool=False)
            for clip in todo:
                yield _work(clip, out)
                bar.update()
            return
        import multiprocessing

        # spawn, not fork: forking a process whose OpenCV/decoder thread pools are running can deadlock.
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(settings, True)) as pool:
            futures = [pool.submit(_work, clip, out) for clip in todo]
            try:
                for future in as_completed(futures):
                    yield future.result()
                    bar.update()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        bar.close()


# --- files ---------------------------------------------------------------------------------------------------

def _claim(out: Path, config: dict) -> None:
    """Create ``out`` for these settings, or check that an existing prepared set used the same ones."""
    path = out / "prepare.json"
    if path.is_file():
        old = _read_json(path)
        if old.get("version") != CACHE_VERSION:
            raise UnmaskError(f"{out} holds a prepared set of version {old.get('version')!r}; this unmask writes "
                              f"version {CACHE_VERSION}: use a new --out folder")
        diff = [f"{k}: {old.get(k)!r} there, {config[k]!r} now" for k in SETTINGS if old.get(k) != config[k]]
        if diff:
            raise UnmaskError(f"{out} was prepared with other settings; use a new --out folder (or the same "
                              f"settings) rather than mixing crops", diff)
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UnmaskError(f"{out} exists and is not a prepared set (no prepare.json); choose a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(path, config)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise UnmaskError(f"cannot write {path}")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader sees the whole file or none


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UnmaskError(f"cannot read {path}: {e}") from None


def _write_failures(path: Path, failures: list[Failure]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "row", "video", "reason"])
        w.writerows([x.clip_id, x.row, x.video, x.reason] for x in failures)
    os.replace(tmp, path)


class PreparedSet:
    """Read a folder written by :func:`prepare`."""

    def __init__(self, path):
        self.path = Path(path)
        config = self.path / "prepare.json"
        if not config.is_file():
            raise UnmaskError(f"{self.path} is not a prepared set (no prepare.json); "
                              f"make one with: unmask prepare MANIFEST --out {self.path}")
        self.config = _read_json(config)
        if self.config.get("version") != CACHE_VERSION:
            raise UnmaskError(f"{self.path} is a prepared set of version {self.config.get('version')!r}; this unmask "
                              f"reads version {CACHE_VERSION}: prepare it again")

    @property
    def root(self) -> Path:
        return self.path

    def __repr__(self) -> str:
        return f"PreparedSet({str(self.path)!r})"

    @cached_property
    def manifest(self) -> Manifest:
        # The crops are here; the original videos need not be.
        return read_manifest(self.path / "manifest.csv", check_files=False)

    def clip_ids(self) -> list[str]:
        """Finished clips, in manifest order."""
        return [c.clip_id for c in self.manifest if (self.path / "clips" / c.clip_id / "meta.json").is_file()]

    def failures(self) -> list[Failure]:
        path = self.path / "failures.csv"
        if not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as f:
            return [Failure(r["clip_id"], int(r["row"]), r["video"], r["reason"]) for r in csv.DictReader(f)]

    def meta(self, clip_id: str) -> dict:
        path = self.path / "clips" / clip_id / "meta.json"
        if not path.is_file():
            raise UnmaskError(f"clip {clip_id!r} is not prepared in {self.path} (see failures.csv, or rerun prepare)")
        return _read_json(path)

    def load(self, clip_id: str, role: str) -> np.ndarray:
        """The ``role`` (onset, apex or offset) crop as RGB uint8 ``[size, size, 3]``."""
        if role not in ROLES:
            raise UnmaskError(f"unknown frame role {role!r}; expected one of {', '.join(ROLES)}")
        self.meta(clip_id)
        return self._read_png(self.path / "clips" / clip_id / f"{role}.png")

    def load_clip(self, clip_id: str) -> np.ndarray:
        """The K sampled crops, in time order, as ``[K, size, size, 3]`` uint8."""
        k = len(self.meta(clip_id)["frames"]["clip"])
        if k == 0:
            raise UnmaskError(f"{self.path} was prepared with --clip-frames 0: no clip frames to load")
        return np.stack([self._read_png(self.path / "clips" / clip_id / f"clip_{i:02d}.png") for i in range(k)])

    @staticmethod
    def _read_png(path: Path) -> np.ndarray:
        import cv2

        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UnmaskError(f"cannot read {path} (missing or corrupt; delete the clip's meta.json and rerun prepare)")
        return np.ascontiguousarray(bgr[:, :, ::-1])
