"""Prepare a manifest: decode the needed frames, find the face, crop, resize and cache each clip on disk.

``unmask prepare MANIFEST --out DIR`` (or :func:`prepare`) writes, and :class:`PreparedSet` reads::

    DIR/prepare.json          {"version": 1, "manifest": "<abs path of the source manifest>", "detector": name,
                               "size": int, "margin": float, "frames": "keyframes" | "uniform:T" | "span:T",
                               "clip_frames": K or T, "align": bool, "tasks": [...], "unmask_version": "..."}
    DIR/manifest.csv          copy of the source manifest (video paths point to the original videos)
    DIR/clips/<clip_id>/onset.png, apex.png, offset.png      RGB face crops, size x size, lossless PNG, for the
                                                             key frames the row annotates
    DIR/clips/<clip_id>/clip_00.png ... clip_{K-1}.png       the frames the sampling policy picked
                                                             (:mod:`unmask.data.sampling`), in time order
    DIR/clips/<clip_id>/flow.png    with --flow METHOD: the onset-to-apex optical flow of the crops (u, v,
                                    optical strain; uint8-encoded, :mod:`unmask.data.flow`)
    DIR/clips/<clip_id>/meta.json   {"clip_id", "frames": {"onset": i, "apex": i, "offset": i, "clip": [i, ...]}
                                     (roles only where annotated), "sampling": policy, "video_frames": n
                                     (uniform) or null, "boxes": {"<frame index>": [x, y, w, h]},
                                     "box_source": {"<frame index>": detector name | "nearest:<frame index>"},
                                     "angles": {"<frame index>": degrees} (with align), "detector": name}
                                    written last: its presence marks the clip finished
    DIR/failures.csv          clip_id,row,video,reason  (rewritten at the end of each run: its failures)

For each clip the video is decoded once, from the start up to the last needed frame. In each needed frame
the largest face is kept (with ``annotated``, the manifest's box; ``auto`` tries yuface, haar and the
manifest's box in turn, per frame). A frame where no face is found borrows the box of the nearest frame that
has one (``box_source`` says so); a clip fails only when none of its frames has a face. ``align`` turns each
crop so the eyes are level (YuNet's eye landmarks; a frame without landmarks takes the nearest frame's
angle), so the crops of one clip are registered. ``none`` takes the whole frame, without margin.

Failed clips (missing or corrupt video, frame beyond the end, no face) are listed in failures.csv and retried
on the next run; finished clips are skipped. The run ends with a per-subject count of where the boxes came
from and of the clips lost (:mod:`unmask.data.prepare_summary`). The crop settings are fixed per DIR: a rerun
with another detector, size, margin, sampling, K, alignment or manifest is refused rather than mixing crops.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unmask.data.manifest import Clip, Manifest, read_manifest, validate_manifest, write_manifest
from unmask.data.prepare_summary import DetectionSummary
from unmask.data.sampling import ROLES, Sampling, clip_frame_indices, missing_roles, parse_sampling, planned_frames
from unmask.errors import UnmaskError
from unmask.io import atomic_write_json
from unmask.tasks import tasks_to_list

if TYPE_CHECKING:
    from unmask.data.faces import FaceDetector

CACHE_VERSION = 1
SETTINGS = ("manifest", "detector", "size", "margin", "frames", "clip_frames", "align", "flow",
            "flow_align")  # must match to reuse a DIR
# added after version 1: what an older set (or one prepared without flow) meant
SETTING_DEFAULTS = {"align": False, "frames": "keyframes", "flow": "none", "flow_align": "none"}
__all__ = ["PreparedSet", "PrepareResult", "clip_frame_indices", "prepare", "prepare_clip"]


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
    invalid: list[str] = field(default_factory=list)  # manifest rows left out by skip_invalid ("file:row: why")
    detection: DetectionSummary = field(default_factory=DetectionSummary)
    max_loss: float = 0.2  # warn about a subject that lost more than this share of its clips

    @property
    def warnings(self) -> list[str]:
        return self.detection.warnings(self.max_loss)

    def summary(self) -> str:
        lines = self.detection.table()
        if self.detection.borrowed:
            lines.append(f"{self.detection.borrowed} frame(s) had no face of their own and borrowed the nearest "
                         f"detected frame's box (box_source nearest:N in meta.json)")
        lines += self.warnings
        if self.invalid:
            lines.append(f"{len(self.invalid)} invalid manifest row(s) skipped")
        lines.append(f"prepared {self.done} clips ({self.skipped} skipped as already done), {self.failed} failed; "
                     f"failures in {self.out / 'failures.csv'}")
        return "\n".join(lines)


def _nearest(i: int, have: Iterable[int]) -> int:
    return min(have, key=lambda j: (abs(j - i), j))


def crop_frames(images: dict[int, np.ndarray], detector: FaceDetector, *, size: int = 224, margin: float = 0.2, align: bool = False,
                clip: Clip | None = None) -> tuple[dict, dict, dict, dict]:
    """Face crops of decoded frames ``{index: RGB}``, as ``prepare`` makes them (``unmask predict`` makes a clip
    model's input from a raw video with the same function): ``(crops, boxes, box_source, angles)``, each keyed
    by frame index. The largest face of each frame; a frame without one borrows the nearest frame's box; with
    ``align`` each crop is turned so the eyes are level. UnmaskError when no frame has a face."""
    from unmask.data.faces import best_face, crop_face, eye_angle

    needed = sorted(images)
    boxes, source, angles = {}, {}, {}
    for i in needed:
        face = best_face(detector.detect(images[i], clip=clip, frame=i))
        if face is not None:
            boxes[i], source[i] = face.box, face.source
            if face.landmarks:
                angles[i] = eye_angle(face.landmarks)
    if not boxes:
        raise UnmaskError(f"no face in any of the {len(needed)} frames needed (frames {needed[0]}-{needed[-1]}, "
                          f"{detector.name} detector)")
    found = list(boxes)
    for i in needed:
        if i not in boxes:
            # Within one clip the head moves little: a miss is a detector slip, not an absent face.
            j = _nearest(i, found)
            boxes[i], source[i] = boxes[j], f"nearest:{j}"
    if align:  # a frame without landmarks (haar, a manifest box) turns as its nearest landmarked frame
        angles = {i: angles[i] if i in angles else angles[_nearest(i, angles)] if angles else 0.0 for i in needed}
    crops = {i: crop_face(images[i], boxes[i], margin=margin, size=size, angle=angles.get(i, 0.0) if align else 0.0)
             for i in needed}
    return crops, boxes, source, angles


def prepare_clip(clip: Clip, out: Path, detector: FaceDetector, *, size: int = 224, margin: float = 0.2,
                 sampling: Sampling = Sampling("keyframes", 8), align: bool = False, flow: str = "none",
                 flow_align: str = "ecc") -> dict:
    """Prepare one clip into ``out/clips/<clip_id>/``; returns its meta. Raises UnmaskError on failure."""
    from unmask.data.video import probe, read_frames

    if flow != "none" and (clip.onset is None or clip.apex is None):
        raise UnmaskError("--flow needs the onset and apex frames; this row annotates "
                          f"{'no onset' if clip.onset is None else 'no apex'}")
    # uniform sampling spreads over the whole video: its length first (a decode without RGB conversion)
    length = probe(clip.video).num_frames if sampling.needs_length else None
    frames = planned_frames(clip, sampling, length)
    needed = sorted({*(frames[r] for r in ROLES if r in frames), *frames["clip"]})
    images = read_frames(clip.video, needed)  # one decode, stops after the last needed frame
    crops, boxes, source, angles = crop_frames(images, detector, size=size, margin=margin, align=align, clip=clip)
    folder = out / "clips" / clip.clip_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)  # the clip is unfinished until meta.json is back
    names = [(f"{role}.png", frames[role]) for role in ROLES if role in frames]
    names += [(f"clip_{k:02d}.png", i) for k, i in enumerate(frames["clip"])]
    for name, i in names:
        _write_png(folder / name, crops[i])
    flow_info = None
    if flow != "none":  # motion input: onset -> apex flow of the (aligned) crops, computed once
        from unmask.data.flow import encode_flow, onset_apex_flow

        field, flow_info = onset_apex_flow(crops[frames["onset"]], crops[frames["apex"]], flow, flow_align)
        _write_png(folder / "flow.png", encode_flow(field))
    meta = {"clip_id": clip.clip_id, "frames": frames, "sampling": str(sampling), "video_frames": length,
            "boxes": {str(i): list(boxes[i]) for i in needed},
            "box_source": {str(i): source[i] for i in needed}, "detector": detector.name}
    if align:
        meta["angles"] = {str(i): round(angles[i], 3) for i in needed}
    if flow_info is not None:
        meta["flow"] = flow_info
    atomic_write_json(folder / "meta.json", meta, indent=1)
    return meta


def prepare(manifest_path: str | Path, out: str | Path, *, detector: str = "auto", size: int = 224, margin: float = 0.2,
            frames: str = "keyframes", clip_frames: int = 8, align: bool = False, flow: str = "none",
            flow_align: str = "ecc", workers: int = 1,
            masked_only: bool = False, skip_invalid: bool = False, max_loss: float = 0.2,
            progress: bool = True) -> PrepareResult:
    """Prepare every clip of a manifest into ``out`` (layout in the module docstring); resumable.

    ``frames``: the sampling policy (:mod:`unmask.data.sampling`: ``keyframes`` with ``clip_frames`` K,
    ``uniform:T`` or ``span:T``). ``skip_invalid``: malformed manifest rows (and rows without the key frames
    the policy needs) are left out and listed in ``result.invalid`` instead of refusing the manifest.
    ``flow``: ``none`` or a method of :mod:`unmask.data.flow` (``dis``, ``farneback``, ``tvl1``): the onset-to-apex
    flow is computed and cached per clip, after ``flow_align`` (``ecc`` or ``none``) registers apex onto onset.
    ``max_loss``: warn about subjects that lose more than this share of their clips. ``detector="none"``
    ignores ``margin`` (the frames are the crops; it is recorded as 0).
    """
    import unmask
    from unmask.data.faces import resolve_detector_name

    sampling = parse_sampling(frames, clip_frames)
    if flow != "none":
        from unmask.data.flow import ALIGNS, check_method

        check_method(flow)
        if flow_align not in ALIGNS:
            raise UnmaskError(f"unknown flow alignment {flow_align!r}; expected one of: {', '.join(ALIGNS)}")
    else:
        flow_align = "none"
    if size < 1 or margin < 0 or workers < 1 or not 0 <= max_loss <= 1:
        raise UnmaskError(f"bad settings: size={size} (>= 1), margin={margin} (>= 0), "
                          f"workers={workers} (>= 1), max_loss={max_loss} (0-1)")
    manifest_path = Path(manifest_path).resolve()
    # Missing videos become per-clip failures below, not an error for the whole manifest.
    invalid: list[str] = []
    if skip_invalid:
        manifest, invalid = validate_manifest(manifest_path, check_files=False)
        if not manifest.clips:
            raise UnmaskError(f"no valid row in manifest {manifest_path}", invalid)
    else:
        manifest = read_manifest(manifest_path, check_files=False)
    unsampled = [f"{manifest_path}:{c.row}: clip {c.clip_id} has no {' or '.join(missing_roles(c, sampling))} "
                 f"frame; --frames {sampling} needs {', '.join(sampling.needs)} (uniform:T needs none)"
                 for c in manifest.clips if missing_roles(c, sampling)]
    if unsampled and not skip_invalid:
        raise UnmaskError(f"{len(unsampled)} row(s) of {manifest_path} lack key frames that --frames {sampling} "
                          f"needs", unsampled)
    invalid += unsampled
    manifest.clips = [c for c in manifest.clips if not missing_roles(c, sampling)]
    if not manifest.clips:
        raise UnmaskError(f"no valid row in manifest {manifest_path}", invalid)
    clips = manifest.masked().clips if masked_only else manifest.clips
    out = Path(out)
    detector = resolve_detector_name(detector)
    config = {"version": CACHE_VERSION, "manifest": str(manifest_path), "detector": detector,
              "size": int(size), "margin": 0.0 if detector == "none" else float(margin),
              "frames": str(sampling), "clip_frames": sampling.count, "align": bool(align),
              "unmask_version": unmask.__version__,
              "tasks": tasks_to_list(manifest.tasks)}
    if flow != "none":  # recorded only when used: a set without flow keeps the settings it always had
        config.update(flow=flow, flow_align=flow_align)
    _claim(out, config)
    write_manifest(manifest.clips, out / "manifest.csv", manifest.tasks)

    result = PrepareResult(out, config["detector"], invalid=invalid, max_loss=max_loss)
    todo = []
    for clip in clips:
        path = out / "clips" / clip.clip_id / "meta.json"
        meta = _read_json(path) if path.is_file() else {}
        length = meta.get("video_frames")  # uniform: the frames depend on the video's length, found last time
        if meta and (length or not sampling.needs_length) and meta["frames"] == planned_frames(clip, sampling, length):
            result.skipped += 1
            result.detection.add_clip(clip.subject, meta)
        else:
            todo.append(clip)  # new, failed before, interrupted, or its frames changed in the manifest

    settings = {k: config.get(k, SETTING_DEFAULTS.get(k)) for k in ("detector", "size", "margin", "frames",
                                                                    "clip_frames", "align", "flow", "flow_align")}
    for clip, meta, reason in _run(todo, out, settings, workers, progress):
        if reason is None:
            result.done += 1
            result.detection.add_clip(clip.subject, meta)
        else:
            result.failed += 1
            result.detection.add_loss(clip.subject)
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


def _work(clip: Clip, out: Path) -> tuple[Clip, dict | None, str | None]:
    s = _WORKER["settings"]
    try:
        meta = prepare_clip(clip, out, _WORKER["detector"], size=s["size"], margin=s["margin"],
                            sampling=parse_sampling(s["frames"], s["clip_frames"]), align=s["align"],
                            flow=s["flow"], flow_align=s["flow_align"])
    except UnmaskError as e:
        return clip, None, str(e)
    return clip, meta, None


def _run(todo: list[Clip], out: Path, settings: dict, workers: int, progress: bool) -> Iterator[tuple[Clip, dict | None, str | None]]:
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
        now = {k: config.get(k, SETTING_DEFAULTS.get(k)) for k in SETTINGS}
        diff = [f"{k}: {old.get(k, SETTING_DEFAULTS.get(k))!r} there, {now[k]!r} now" for k in SETTINGS
                if old.get(k, SETTING_DEFAULTS.get(k)) != now[k]]
        if diff:
            raise UnmaskError(f"{out} was prepared with other settings; use a new --out folder (or the same "
                              f"settings) rather than mixing crops", diff)
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UnmaskError(f"{out} exists and is not a prepared set (no prepare.json); choose a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, config, indent=1)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1])):
        raise UnmaskError(f"cannot write {path}")


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

    def __init__(self, path: str | Path):
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

    @property
    def sampling(self) -> Sampling:
        """The sampling policy the set was prepared with (``keyframes`` for sets older than the setting)."""
        return parse_sampling(self.config.get("frames", "keyframes"), int(self.config.get("clip_frames", 0)))

    def roles(self, clip_id: str) -> list[str]:
        """The key-frame crops a finished clip has (those its manifest row annotates), in time order."""
        frames = self.meta(clip_id)["frames"]
        return [r for r in ROLES if r in frames]

    def role_path(self, clip_id: str, role: str) -> Path:
        """The PNG of the ``role`` (onset, apex or offset) crop of a finished clip."""
        if role not in ROLES:
            raise UnmaskError(f"unknown frame role {role!r}; expected one of {', '.join(ROLES)}")
        if role not in self.roles(clip_id):
            raise UnmaskError(f"clip {clip_id!r} in {self.path} has no {role} frame (its manifest row annotates "
                              f"none; prepared with --frames {self.sampling}): choose another paradigm")
        return self.path / "clips" / clip_id / f"{role}.png"

    def clip_paths(self, clip_id: str) -> list[Path]:
        """The PNGs of the frames the sampling policy picked for a finished clip, in time order."""
        k = len(self.meta(clip_id)["frames"]["clip"])
        if k == 0:
            raise UnmaskError(f"{self.path} was prepared with --clip-frames 0: no clip frames to load")
        return [self.path / "clips" / clip_id / f"clip_{i:02d}.png" for i in range(k)]

    def flow_path(self, clip_id: str) -> Path:
        """The cached onset-to-apex flow of a finished clip (``flow.png``); an error when not prepared with it."""
        if self.config.get("flow", "none") == "none":
            raise UnmaskError(f"{self.path} was prepared without flow: prepare again with --flow dis (or "
                              f"farneback, tvl1) into a new folder")
        return self.path / "clips" / clip_id / "flow.png"

    def load_flow(self, clip_id: str) -> np.ndarray:
        """The flow as its uint8 encoding ``[size, size, 3]`` (:func:`unmask.data.flow.decode_flow` -> pixels)."""
        return self._read_png(self.flow_path(clip_id))

    def load(self, clip_id: str, role: str) -> np.ndarray:
        """The ``role`` (onset, apex or offset) crop as RGB uint8 ``[size, size, 3]``."""
        return self._read_png(self.role_path(clip_id, role))

    def load_clip(self, clip_id: str) -> np.ndarray:
        """The sampled crops, in time order, as ``[K, size, size, 3]`` uint8."""
        return np.stack([self._read_png(p) for p in self.clip_paths(clip_id)])

    @staticmethod
    def _read_png(path: Path) -> np.ndarray:
        """A prepared crop as RGB uint8 ``[size, size, 3]``."""
        import cv2

        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UnmaskError(f"cannot read {path} (missing or corrupt; delete the clip's meta.json and rerun prepare)")
        return np.ascontiguousarray(bgr[:, :, ::-1])
