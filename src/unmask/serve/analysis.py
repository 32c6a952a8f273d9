"""One uploaded file -> what the page shows: a per-face table, the annotated image or video, a timeline.

Everything the model says comes from :class:`unmask.predict.Predictor` (``predict_image`` /
``predict_video``), so the page's numbers are ``unmask predict``'s for the same file and checkpoint. This
module only turns its result rows into the page's JSON and draws on them.

* an image: one table row per face (``face`` 0 = highest detector score);
* a video: every ``every``-th frame is predicted, with the apex search of ``unmask predict --apex-search``;
  the table has one row per face track, at the frame the search picked (the model was trained on apex
  frames), and the timeline plots the probabilities of the longest track over time. A video longer than
  ``Limits.max_video_s`` is refused; one with more than ``Limits.max_frames`` frames is sampled evenly
  (``every`` = ceil(frames / max_frames)) and the page says so.

Bad input raises :class:`~unmask.errors.UnmaskError` with a message for the page (the caller replaces the
server's temporary path in it by the uploaded file's name).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.predict import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, media_kind
from unmask.serve.trust_view import face_trust

if TYPE_CHECKING:
    import pandas as pd

    from unmask.predict import Predictor

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)


@dataclass(frozen=True)
class Limits:
    """What one upload may cost. ``max_jobs``: uploads waiting or running at once (one runs at a time)."""

    max_upload_mb: float = 50.0
    max_video_s: float = 120.0
    max_frames: int = 300
    max_jobs: int = 4

    def __post_init__(self):
        for name in ("max_upload_mb", "max_video_s", "max_frames", "max_jobs"):
            if not getattr(self, name) > 0:
                raise UnmaskError(f"--{name.replace('_', '-')} must be positive (got {getattr(self, name)})")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass
class Analysis:
    """The page's JSON (``data``) and the media it links to (``media``: name -> (bytes, content type))."""

    data: dict
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)


def accepted_extensions() -> tuple[str, ...]:
    return IMAGE_EXTENSIONS + VIDEO_EXTENSIONS


def analyse(predictor: Predictor, path: Path, name: str, limits: Limits, progress: Progress) -> Analysis:
    """``path``: the upload on disk, with the extension of ``name`` (the file name the user gave)."""
    kind = media_kind(path)
    if kind == "image":
        return _image(predictor, path, name, progress)
    if kind == "video":
        return _video(predictor, path, name, limits, progress)
    raise UnmaskError(f"{name}: not an image or video (accepted: {', '.join(accepted_extensions())})")


def _image(predictor: Predictor, path: Path, name: str, progress: Progress) -> Analysis:
    from unmask.predict import read_image
    from unmask.predict.render import draw

    progress(0.1, "finding faces")
    df = predictor.predict_image(path, source=name)
    _raise_on_error(df)
    faces = df[df.face_found]
    if faces.empty:
        raise UnmaskError(f"no face found in {name}")
    progress(0.8, "drawing")
    img = draw(read_image(path), faces.to_dict("records"), predictor.tasks)
    data = _page_data(predictor, name, "image", faces.to_dict("records"))
    return Analysis(data, {"annotated.jpg": (_jpeg(img), "image/jpeg")})


def _video(predictor: Predictor, path: Path, name: str, limits: Limits, progress: Progress) -> Analysis:
    from unmask.data.video import VideoError
    from unmask.predict.render import annotate_video, plot_timeline, timeline_series

    fps, duration, frames = video_header(path, name)
    if duration > limits.max_video_s:
        raise UnmaskError(f"{name} is {duration:.1f} s long; this server takes videos up to "
                          f"{limits.max_video_s:g} s (unmask serve --max-video-s)")
    every = max(1, math.ceil(frames / limits.max_frames)) if frames else 1
    expected = max(1, math.ceil(frames / every)) if frames else 0
    seen = [0]

    def on_frame(index: int) -> None:
        # a header without a duration cannot be refused up front: stop once the decoded part is too long
        if fps and index / fps > limits.max_video_s or not fps and index > limits.max_video_s * 30:
            raise UnmaskError(f"{name} is longer than {limits.max_video_s:g} s, the longest video this server "
                              "takes (unmask serve --max-video-s)")
        seen[0] += 1
        done = seen[0] / expected if expected else 0.0
        progress(0.05 + 0.75 * min(done, 1.0), f"frame {index + 1}" + (f" of {frames}" if frames else ""))

    progress(0.05, "reading the video")
    df = predictor.predict_video(path, every=every, apex_search=True, on_frame=on_frame)
    notes = []
    if (df.error != "").any():
        if not df.face_found.any():
            _raise_on_error(df)
        notes.append(f"the video could not be read to the end; showing its frames up to {df.frame.max()}")
    if not df.face_found.any():
        raise UnmaskError(f"no face found in {name} (in {int((~df.apex).sum())} sampled frames)")
    if every > 1:
        notes.append(f"{frames} frames: 1 frame in {every} was analysed (unmask serve --max-frames "
                     f"{limits.max_frames})")
    frames_df = df[(df.error == "") & ~df.apex]
    apex = df[df.apex].sort_values("track")
    if predictor.onset_apex:  # an onset-to-apex clip model (MEDN): its one row per video, at the apex, is the reading
        apex = frames_df[frames_df.face_found]
    progress(0.8, "drawing the annotated video")
    media = {}
    tmp = path.with_name("annotated.mp4")
    try:
        annotate_video(path, frames_df, predictor.tasks, tmp)
        media["annotated.mp4"] = (tmp.read_bytes(), "video/mp4")
    except VideoError as e:  # a video broken part-way: the frames read still have their table and timeline
        notes.append(f"no annotated video: {e}")
    finally:
        tmp.unlink(missing_ok=True)
    progress(0.95, "plotting the timeline")
    data = _page_data(predictor, name, "video", apex.to_dict("records"))
    data.update(every=every, notes=notes, timeline=timeline_series(predictor.tasks, frames_df, apex))
    media["timeline.png"] = (plot_timeline(predictor.tasks, data["timeline"]), "image/png")
    return Analysis(data, media)


def video_header(path: Path, name: str) -> tuple[float, float, int]:
    """``(fps, duration_s, frames)`` from the container header, 0 where it does not say."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise UnmaskError(f"{name} has no video stream")
            s = c.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or 0)
            duration = float(s.duration * s.time_base) if s.duration else (c.duration or 0) / 1e6
            frames = int(s.frames or (round(duration * fps) if duration and fps else 0))
    except (av.FFmpegError, OSError) as e:
        raise UnmaskError(f"cannot read {name} as a video ({e})") from None
    return fps, duration, frames


def _raise_on_error(df: pd.DataFrame) -> None:
    errors = df.loc[df.error != "", "error"]
    if len(errors):
        raise UnmaskError(errors.iloc[0])


def _page_data(predictor: Predictor, name: str, kind: str, rows: list[dict]) -> dict:
    """The result's JSON: the tasks as the checkpoint declares them and one entry per table row."""
    tasks = [{"name": t.name, "title": t.title, "kind": t.kind, "labels": list(t.labels)} for t in predictor.tasks]
    faces = []
    for r in rows:
        face: dict[str, Any] = {"face": int(r["face"]), "track": int(r["track"]), "frame": int(r["frame"]),
                "time_s": None if _missing(r.get("time_s")) else float(r["time_s"]),
                "box": [int(r[k]) for k in ("x", "y", "w", "h")], "tasks": {}}
        for t in predictor.tasks:
            conf = r.get(f"{t.name}_conf")
            face["tasks"][t.name] = {"pred": str(r.get(f"{t.name}_pred") or ""),
                                     "conf": None if _missing(conf) else float(conf),  # type: ignore[arg-type]
                                     "p": {label: float(r[f"{t.name}_p_{label}"]) for label in t.labels}}
        face.update(face_trust(predictor, r))  # the unlike-training flag and score, the note, the peers' bars
        faces.append(face)
    return {"name": name, "kind": kind, "tasks": tasks, "faces": faces, "every": 1, "notes": []}


def _missing(v: Any) -> bool:
    import pandas as pd

    return v is None or bool(pd.isna(v))


def _jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise UnmaskError("cannot encode the annotated image")
    return buf.tobytes()
