"""Predict every task of a trained model (DSID: the felt and the shown emotion) for every face in new images
and videos.

::

    p = Predictor.from_checkpoint("runs/demo/run/folds/s01")     # a checkpoint.pt or its fold folder
    df = p.predict_paths(["photo.jpg", "clip.mp4"], every=5)       # one row per face per frame

Preprocessing is the training one, read from the checkpoint (``ckpt["preprocess"]``): the face detector,
the square crop (``crop_face`` with the checkpoint's margin, at its ``crop_size``), the resize of the crop to
the model's input size (:func:`unmask.data.transforms.resize_uint8`, as training resized the cached crops) and the
normalisation (:class:`unmask.data.transforms.Preprocess` with the checkpoint's mean/std). A checkpoint made
with the ``annotated`` detector (boxes from a manifest) cannot find faces in new media: ``auto`` is used
instead and the reason is logged once. Every face of a frame is classified, in batches across faces and
frames.

Result columns (:data:`BASE_COLUMNS`, then per task of the checkpoint, in its order, ``<task>_pred``,
``<task>_conf`` and ``<task>_p_<label>...`` in the task's label order (calibrated by the checkpoint's temperatures
unless ``calibrated=False``), the peers' columns, :data:`unmask.trust.TRUST_COLUMNS` (the unlike-training score
and flag, the provenance line, the warnings), then ``error``):

* ``source`` the file (or ``<image>`` for an in-memory image); ``kind`` image | video;
* ``frame`` the 0-based decoded frame index (-1 for images), ``time_s`` its timestamp (NaN for images);
* ``face`` the face's index in its frame (0 = highest detector score; -1 when none), ``track`` its face track
  in a video (-1 for images);
* ``x, y, w, h`` the detector's box in pixels, ``det_score`` its score;
* ``face_found`` False for a frame without a face: one row with empty predictions (never silently skipped);
* ``apex`` True on the apex summary rows of :meth:`Predictor.predict_video` with ``apex_search``, whose
  ``apex_score`` is the feature distance that chose the frame;
* ``<task>_pred``/``<task>_conf``: the top class and its probability (a multi-label task: the labels at
  p >= 0.5 joined by ``+``, ``none`` when there are none, and the highest probability);
* ``error``: empty, or why the input could not be read (that input then has this one row).

Clip models (trained on the ``clip`` paradigm: T frames per example) are given clips: on a video, each face
track's sampled detections in consecutive windows of T (the last one padded by repeating its last crop), every
row of a window carrying that window's prediction; an image is a still clip (its crop repeated T times).

Onset-to-apex clip models (trained on the ``clip_flow`` paradigm: MEDN) read one input per video, made as
``prepare`` made it from the settings the checkpoint records (:mod:`unmask.data.onset_apex`): the T frames from
the onset to the apex (frame indices given, or the onset = the first frame and the apex searched) with their
face crops and the onset-to-apex flow. Each video gives one row, at the apex frame, with ``onset`` and
``apex_from`` (given | search) columns; images are refused with an error row.

Apex search (videos): the model was trained on apex frames, where the disguise is at full intensity, so a
per-frame prediction far from the apex means little. The heuristic: for each face track, the mean backbone
feature of its first ``neutral_frames`` detections is the neutral reference (clips start neutral); each
frame's score is the cosine distance of its feature to that reference, averaged over a centred window of
about ``smooth_s`` = 0.2 s of sampled frames (an apex is a plateau; a one-frame jump is more likely noise, a
blink or a brief leak of the true emotion); the apex is the frame with the highest score, and its prediction is repeated as an extra
row with ``apex=True``. It assumes the video starts near neutral and that the disguise is the largest
change in the face, and it only sees the sampled frames (``every``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from unmask.errors import UnmaskError
from unmask.results import (
    BASE_COLUMNS,
    ONSET_APEX_COLUMNS,
    read_results,
    task_columns,
    to_frame,
    video_summary,
    write_results,
)
from unmask.tracking import FaceTracker, apex_index
from unmask.trust import TRUST_COLUMNS, Trust

log = logging.getLogger("unmask")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def media_kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTENSIONS else "video" if ext in VIDEO_EXTENSIONS else None


def find_media(inputs, sequences: bool = False) -> list[Path]:
    """Files to predict on: the given files as they are, folders searched recursively by extension (sorted);
    with ``sequences`` a folder is kept whole, as one video (its images in frame-number order).

    A missing path or a folder without media is kept as is: :meth:`Predictor.predict_paths` reports it.
    """
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir() and not sequences:
            found = sorted(f for f in p.rglob("*") if f.is_file() and media_kind(f))
            out.extend(found or [p])
        else:
            out.append(p)
    return out


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` (EXIF orientation applied by OpenCV); UnmaskError when unreadable."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise UnmaskError(f"file not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UnmaskError(f"cannot read image {path} (corrupt or not an image)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _as_rgb(img) -> np.ndarray:
    if isinstance(img, np.ndarray):
        if img.dtype == np.uint8 and img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise UnmaskError(f"expected an RGB uint8 image [H, W, 3], got {img.dtype} {img.shape}")
        return np.ascontiguousarray(img)
    if hasattr(img, "convert"):  # PIL image
        return np.asarray(img.convert("RGB")).copy()
    return read_image(img)


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, a fold folder holding ``checkpoint.pt``, or a run folder with exactly one fold."""
    p = Path(path)
    if p.is_file() or (p / "checkpoint.pt").is_file():
        return p if p.is_file() else p / "checkpoint.pt"
    folds = sorted(f.parent.name for f in p.glob("folds/*/checkpoint.pt")) if p.is_dir() else []
    if len(folds) == 1:
        return p / "folds" / folds[0] / "checkpoint.pt"
    if len(folds) > 1:
        raise UnmaskError(f"{p} is a run with {len(folds)} folds; pick one checkpoint, e.g. {p / 'folds' / folds[0]}",
                          [f"fold: {p / 'folds' / f}" for f in folds])
    raise UnmaskError(f"no checkpoint at {p} (expected a checkpoint.pt, a fold folder or a run folder)")


class Predictor:
    """A trained model with its training preprocessing; see the module docstring."""

    def __init__(self, model, ckpt: dict, *, device: torch.device, detector=None, batch_size: int = 32,
                 precision: str = "fp32", neutral_frames: int = 3, smooth_s: float = 0.2, peers=(),
                 calibrated: bool = True):
        from unmask.data.transforms import Preprocess

        if precision not in ("fp32", "bf16"):
            raise UnmaskError(f"unknown precision {precision!r}; expected fp32 or bf16")
        if batch_size < 1:
            raise UnmaskError(f"batch size must be at least 1 (got {batch_size})")
        self.model, self.ckpt, self.device = model, ckpt, device
        self.tasks = tuple(model.tasks)  # what this model predicts: tasks with their label names
        prep = ckpt["preprocess"]
        # a model of onset-to-apex clips with their flow (paradigm clip_flow, e.g. MEDN) reads one input per video,
        # made as prepare made it (unmask.data.onset_apex); the model encodes the whole clip itself
        self.onset_apex = None
        if prep.get("paradigm") == "clip_flow":
            from unmask.data.onset_apex import OnsetApexInput

            self.onset_apex = OnsetApexInput.from_preprocess(prep)
        self.encodes_clips = bool(getattr(model, "encodes_clips", False))
        # a clip model reads T frames per example (the prepared set's clip frames)
        self.clip_frames = int(prep.get("clip_frames") or 8) if getattr(model, "clip_input", False) else 0
        self.input_size = int(prep["input_size"][-1])
        self.margin = float(prep["margin"] if prep.get("margin") is not None else 0.2)
        self.crop_size = int(prep.get("crop_size") or self.input_size)
        self.normalize = Preprocess(prep["mean"], prep["std"])
        self.batch_size, self.precision = batch_size, precision
        # bf16: a bf16 copy of the backbone under autocast, as feature extraction does (autocast over fp32
        # weights takes open_clip's attention off its fused path and was slower than fp32 on a CPU)
        from unmask.models.inference import cast_backbone

        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self._backbone = cast_backbone(model.backbone, dtype, device).eval()
        self.neutral_frames, self.smooth_s = neutral_frames, smooth_s
        self.detector, self.detector_note = self._make_detector(detector, prep.get("detector"))
        self.detector_fallback = "(auto:" in self.detector_note  # the checkpoint's detector could not be used
        from unmask.peers import Peer  # off-the-shelf models whose columns go beside ours (unmask.peers)

        self.peers = [Peer(name, device, batch_size) for name in dict.fromkeys(peers)]
        self.trust = Trust(ckpt, calibrated)  # provenance, calibration, the "unlike the training faces" flag

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", detector=None, **kwargs) -> Predictor:
        from unmask.checkpoint import load_checkpoint
        from unmask.runtime import resolve_device

        dev = resolve_device(device)
        path = resolve_checkpoint_path(path)
        model, ckpt = load_checkpoint(path, dev)
        return cls(model, ckpt, device=dev, detector=detector, **kwargs)

    @staticmethod
    def _make_detector(detector, trained_with: str | None):
        from unmask.data.faces import FaceDetector, create_detector, resolve_detector_name

        if isinstance(detector, FaceDetector):
            return detector, f"face detector: {detector.name} (given)"
        if detector:
            name = resolve_detector_name(detector)
            if name == "annotated":
                raise UnmaskError("the 'annotated' detector reads boxes from a manifest and cannot find faces in "
                                  "new media; choose auto, yuface, haar or none")
            log.info("face detector: %s (chosen)", name)
            return create_detector(name), f"face detector: {name} (chosen)"
        if trained_with in (None, "annotated"):
            name = resolve_detector_name("auto")
            why = ("was trained on manifest boxes ('annotated'), which new media do not have"
                   if trained_with else "does not name its detector")
            note = f"face detector: {name} (auto: the checkpoint {why}; --detector overrides)"
            log.warning(note)  # said once, when the predictor is made
            return create_detector(name), note
        note = f"face detector: {resolve_detector_name(trained_with)} (the checkpoint's)"
        log.info(note)
        return create_detector(trained_with), note

    # -- the model ------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_crops(self, crops) -> dict[str, np.ndarray]:
        """Face crops (uint8 ``[N, H, W, 3]``, as :func:`~unmask.data.faces.crop_face` makes them; a clip model:
        ``[N, T, H, W, 3]``) -> ``{<task>: [N, C] probabilities, ..., "features": [N, D]}`` (backbone features,
        averaged over a clip's frames)."""
        from unmask.data.transforms import resize_uint8

        crops = np.asarray(crops)
        want = 5 if self.clip_frames else 4
        if crops.ndim != want or crops.shape[-1] != 3 or crops.dtype != np.uint8:
            shape = "[N, T, H, W, 3]" if self.clip_frames else "[N, H, W, 3]"
            raise UnmaskError(f"expected uint8 crops {shape}, got {crops.dtype} {crops.shape}")
        out: dict[str, list] = {}
        for start in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(crops[start:start + self.batch_size])
            x = x.permute(*range(x.dim() - 3), -1, -3, -2)  # [B, (T,) 3, H, W]
            x = self.normalize(resize_uint8(x, self.input_size), train=False).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                encode = self._backbone.forward_features if self.model.uses_tokens else self._backbone
                if self.encodes_clips:  # the backbone reads whole clips [B, T, 3, H, W] -> [B, D]
                    f = encode(x).float()
                else:
                    f = encode(x.flatten(0, 1) if self.clip_frames else x)  # [B(*T), D] (or tokens [B(*T), N, C])
                    f = f.float().view(*x.shape[:-3], *f.shape[1:])  # [B, (T,) D]
                o = self.model.forward_head(f)
                if self.model.uses_tokens and not self.encodes_clips:  # apex search compares pooled embeddings
                    f = self._backbone.forward_head(f.flatten(0, -3)).view(*x.shape[:-3], -1)
                if self.encodes_clips and f.dim() > 2:  # a video backbone's tokens per time step: one vector per clip
                    f = f.flatten(1, -2).mean(1)
            for task in self.tasks:
                out.setdefault(task.name, []).append(self.trust.probabilities(task, o[f"{task.name}_logits"]).cpu())
            out.setdefault("features", []).append((f.mean(1) if self.clip_frames and not self.encodes_clips else f).cpu())
        if not out:
            return {"features": np.zeros((0, 0), np.float32), "ood": np.zeros(0)}
        res = {k: torch.cat(v).numpy() for k, v in out.items()}
        res["ood"] = self.trust.scores(res["features"])  # [N] "unlike the training faces" scores
        return res

    # -- rows -------------------------------------------------------------------------------------------
    def _frame_rows(self, rgb: np.ndarray, base: dict, pending: list, frame: int | None = None) -> list[dict]:
        """Detect and crop every face of one frame; the rows wait in ``pending`` for a batched model pass."""
        from unmask.data.faces import crop_face

        faces = self.detector.detect(rgb, frame=frame)
        if not faces:
            return [dict(base, face=-1, face_found=False)]
        rows = []
        for i, d in enumerate(faces):
            x, y, w, h = d.box
            row = dict(base, face=i, x=x, y=y, w=w, h=h, det_score=round(d.score, 4), face_found=True)
            pending.append((row, crop_face(rgb, d.box, margin=self.margin, size=self.crop_size)))
            rows.append(row)
        return rows

    def _flush(self, pending: list, features: dict | None = None) -> None:
        """Predict the waiting rows: one crop each, or for a clip model a still clip (the crop repeated T times)."""
        if not pending:
            return
        crops = np.stack([c for _, c in pending])
        self._peers(pending)
        if self.clip_frames:
            crops = np.repeat(crops[:, None], self.clip_frames, axis=1)  # [N, T, H, W, 3]
        self._assign([[row] for row, _ in pending], self.predict_crops(crops), features)
        pending.clear()

    def _flush_windows(self, pending: list, features: dict) -> None:
        """A clip model on a video: each track's detections in windows of T consecutive sampled frames."""
        self._peers(pending)
        by_track: dict[int, list] = {}
        for row, crop in pending:
            by_track.setdefault(row.get("track", -1), []).append((row, crop))
        groups, clips = [], []
        for items in by_track.values():
            for start in range(0, len(items), self.clip_frames):
                window = items[start:start + self.clip_frames]
                frames = [c for _, c in window] + [window[-1][1]] * (self.clip_frames - len(window))
                groups.append([row for row, _ in window])
                clips.append(np.stack(frames))
        if clips:
            self._assign(groups, self.predict_crops(np.stack(clips)), features)
        pending.clear()

    def _peers(self, pending: list) -> None:
        """Each ``--peer`` model's prediction for every face crop of ``pending``, into its rows."""
        if self.peers and pending:
            crops = np.stack([c for _, c in pending])  # [N, H, W, 3]
            for peer in self.peers:
                for (row, _), p in zip(pending, peer.predict_crops(crops)):
                    peer.fill(row, p)

    def _assign(self, groups: list[list[dict]], out: dict, features: dict | None) -> None:
        for j, rows in enumerate(groups):
            for row in rows:
                for task in self.tasks:
                    p = out[task.name][j]
                    pred = task.predicted(p)
                    row[f"{task.name}_pred"] = pred if task.kind == "single" else task.format(pred)
                    row[f"{task.name}_conf"] = float(p.max())
                    row.update({f"{task.name}_p_{x}": float(v) for x, v in zip(task.labels, p)})
                self.trust.fill(row, float(out["ood"][j]))
                if features is not None:
                    features[id(row)] = out["features"][j]

    def _frame(self, rows: list[dict]) -> pd.DataFrame:
        cols = BASE_COLUMNS + (ONSET_APEX_COLUMNS if self.onset_apex else []) + task_columns(self.tasks)
        cols += [c for peer in self.peers for c in peer.columns]
        for row in rows:  # rows without a face (or an error) still say what the model was trained on
            if "trained_on" not in row:
                self.trust.fill(row, None)
        return to_frame(rows, cols + TRUST_COLUMNS + ["error"])

    # -- public API -------------------------------------------------------------------------------------
    def predict_image(self, img, source: str | None = None) -> pd.DataFrame:
        """One image (path, PIL image or RGB uint8 ndarray) -> one row per face (or one ``face_found=False``)."""
        pending: list = []
        rows = self._image_rows(img, source, pending)
        self._flush(pending)
        return self._frame(rows)

    def _image_rows(self, img, source, pending) -> list[dict]:
        name = source or (str(img) if isinstance(img, (str, Path)) else "<image>")
        base = dict(source=name, kind="image", frame=-1, track=-1)
        if self.onset_apex:
            return [dict(base, face=-1, face_found=False, error=f"{name}: this model reads the frames from onset to "
                         "apex of a video with their optical flow (paradigm clip_flow), not a single image")]
        try:
            rgb = _as_rgb(img)
        except UnmaskError as e:
            return [dict(base, face=-1, face_found=False, error=str(e))]
        return self._frame_rows(rgb, base, pending)

    def predict_video(self, path, every: int = 1, apex_search: bool = False, on_frame=None, *,
                      onset: int | None = None, apex: int | None = None) -> pd.DataFrame:
        """Every ``every``-th frame of a video -> rows per face per sampled frame (+ apex rows, see module doc).

        A video that fails to decode part-way keeps the rows of the frames read and ends with an error row.
        ``on_frame(index)`` is called after each sampled frame is read (progress for a caller such as a web page).
        An onset-to-apex clip model (paradigm ``clip_flow``) gives one row per video instead: ``onset`` and
        ``apex`` are frame indices (None: the first frame; the apex searched), ``every`` does not apply.
        """
        return self._frame(self._video_rows(Path(path), every, apex_search, on_frame, onset=onset, apex=apex))

    def _onset_apex_rows(self, path: Path, onset: int | None, apex: int | None) -> list[dict]:
        """One row: the clip from onset to apex with its flow (:mod:`unmask.data.onset_apex`), at the apex frame."""
        base = dict(source=str(path), kind="video")
        try:
            if path.is_dir():  # a frame folder: the sheet's frame numbers -> positions
                onset, apex = (None if n is None else _position(path, n, name)
                               for name, n in (("onset", onset), ("apex", apex)))
            x, info = self.onset_apex.video_input(path, self.detector, onset, apex)
        except UnmaskError as e:  # VideoError included: a frame past the end, an unreadable file
            return [dict(base, frame=-1, face=-1, track=-1, face_found=False, error=str(e))]
        from unmask.data.video import header_fps

        fps = header_fps(path)
        x0, y0, w, h = info["box"]
        row = dict(base, frame=info["apex"], time_s=round(info["apex"] / fps, 4) if fps else math.nan, face=0,
                   track=0, x=x0, y=y0, w=w, h=h, face_found=True, onset=info["onset"], apex_from=info["apex_from"],
                   apex_score=round(info["apex_score"], 5) if info["apex_from"] == "search" else math.nan)
        self._assign([[row]], self.predict_crops(x[None]), None)
        return [row]

    def _video_rows(self, path: Path, every: int, apex_search: bool, on_frame=None, *, onset: int | None = None,
                    apex: int | None = None) -> list[dict]:
        from unmask.data.video import VideoError, header_fps, iter_timed_frames

        if self.onset_apex:
            return self._onset_apex_rows(path, onset, apex)
        if every < 1:
            raise UnmaskError(f"--every must be at least 1 (got {every})")
        fps = header_fps(path)
        base = dict(source=str(path), kind="video")
        rows: list[dict] = []
        pending: list = []
        features: dict = {}
        tracker = FaceTracker()
        try:
            for index, t, rgb in iter_timed_frames(path, every=every):
                t = round(t, 4) if t is not None else round(index / fps, 4) if fps else math.nan
                new = self._frame_rows(rgb, dict(base, frame=index, time_s=t), pending, frame=index)
                tracker.assign(new)
                rows += new
                if on_frame is not None:
                    on_frame(index)
                if len(pending) >= self.batch_size and not self.clip_frames:
                    self._flush(pending, features)
        except VideoError as e:
            self._flush_video(pending, features)
            return rows + [dict(base, frame=-1, face=-1, track=-1, face_found=False, error=str(e))]
        self._flush_video(pending, features)
        if apex_search:
            # the smoothing window spans about smooth_s seconds of sampled frames (odd, centred; 1 = none)
            window = max(1, round(self.smooth_s * (fps or 25.0) / every)) // 2 * 2 + 1
            rows += self._apex_rows(rows, features, window)
        return rows

    def _flush_video(self, pending: list, features: dict) -> None:
        (self._flush_windows if self.clip_frames else self._flush)(pending, features)

    def _apex_rows(self, rows: list[dict], features: dict, window: int) -> list[dict]:
        tracks: dict[int, list[dict]] = {}
        for r in rows:
            if r.get("face_found") and id(r) in features:
                tracks.setdefault(r["track"], []).append(r)
        out = []
        for _, track in sorted(tracks.items()):
            feats = np.stack([features[id(r)] for r in track])  # [T, D]
            i, score = apex_index(feats, self.neutral_frames, window)
            out.append(dict(track[i], apex=True, apex_score=round(float(score), 5)))
        return out

    def predict_paths(self, paths, every: int = 1, apex_search: bool = False, progress: bool = False, *,
                      onset: int | None = None, apex: int | None = None, sequences: bool = False) -> pd.DataFrame:
        """Images, videos and folders (searched recursively) -> one frame of rows; images are batched together.

        An unreadable input gives one row with ``error`` set and the others go on. ``onset``/``apex``: frame
        indices for an onset-to-apex clip model (:meth:`predict_video`), the same for every video.
        ``sequences``: each folder is one video, a dataset's frame folder (``sub01/EP02_01f/img46.jpg``); there
        ``onset``/``apex`` are the numbers in the images' names, as the coding sheets give them.
        """
        if (onset is not None or apex is not None) and not self.onset_apex:
            raise UnmaskError("--onset/--apex apply to models of onset-to-apex clips (paradigm clip_flow); this "
                              f"checkpoint was trained on {self.ckpt['preprocess'].get('paradigm')!r}")
        from unmask.data.onset_apex import check_onset_apex

        check_onset_apex(onset, apex)
        from tqdm.auto import tqdm

        files = find_media(paths, sequences)
        rows: list[dict] = []
        pending: list = []
        bar = tqdm(files, desc="predict", unit="file", disable=not progress)
        for f in bar:
            bar.set_postfix_str(f.name, refresh=False)
            kind = media_kind(f) if f.is_file() else "video" if sequences and f.is_dir() else None
            if kind == "image":
                rows += self._image_rows(f, str(f), pending)
                if len(pending) >= self.batch_size:
                    self._flush(pending)
            elif kind == "video":
                rows += self._video_rows(f, every, apex_search, onset=onset, apex=apex)
            else:
                why = ("not found" if not f.exists() else "a folder without images or videos" if f.is_dir()
                       else f"not an image or video (extensions: {', '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)})")
                rows.append(dict(source=str(f), kind="", frame=-1, face=-1, track=-1, face_found=False,
                                 error=f"{f}: {why}"))
        self._flush(pending)
        return self._frame(rows)


def _position(folder: Path, number: int, name: str) -> int:
    """The position (0-based) of the image numbered ``number`` in a frame folder; UnmaskError naming the range."""
    from unmask.data.video import frame_numbers

    numbers = frame_numbers(folder)
    if number not in numbers:
        raise UnmaskError(f"--{name} {number}: no image numbered {number} in {folder} (numbers "
                          f"{min(numbers)}-{max(numbers)})")
    return numbers.index(number)


__all__ = ["Predictor", "find_media", "read_image", "apex_index", "read_results", "write_results", "video_summary",
           "resolve_checkpoint_path", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS"]
