"""Model inputs per paradigm: what one model input is cut from, for the kind of model a checkpoint holds.

* :class:`FrameInput`: a model of single frames (paradigms ``apex``, ``onset``): one face crop per input;
* :class:`WindowInput`: a clip model (``clip``: T frames per input): on a video, each face track's sampled
  detections in consecutive windows of T (the last padded by repeating its last crop), every row of a window
  carrying its prediction; an image is a still clip (its crop repeated T times);
* :class:`OnsetApexClips`: an onset-to-apex clip model (``clip_flow``, MEDN): one input per video, the T frames
  from onset to apex with their flow, made as ``prepare`` made it (:mod:`unmask.data.onset_apex`); images are
  refused.

:func:`model_input` picks one from the checkpoint's ``preprocess`` (its paradigm) and what the model declares
(``clip_input``), never from a model's name. A new paradigm is one new class here and one line there.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.predict.faces import Pending, Row
from unmask.predict.model_pass import clip_frames_of
from unmask.predict.rows import error_row

Groups = list[list[Row]]  # the rows each model input stands for, in the inputs' order


class ModelInput:
    """How one paradigm turns a predictor's waiting face crops into model inputs (see the module docstring)."""

    name = ""
    clip_frames = 0  # frames per model input (0: one frame)
    flush_while_decoding = True  # a video's crops may go to the model every batch, before the video ends
    whole_videos = False  # one input per video, read by :meth:`OnsetApexClips.read_video`, no per-frame rows

    def image_error(self, name: str) -> str | None:
        """Why this model cannot read a still image (None: it can)."""
        return None

    def still(self, pending: Pending) -> tuple[Groups, np.ndarray]:
        """Images: one input per crop of ``pending``."""
        return [[row] for row, _ in pending], np.stack([c for _, c in pending])

    def video(self, pending: Pending) -> tuple[Groups, np.ndarray]:
        """A video's sampled frames, once decoded (or each batch, with ``flush_while_decoding``)."""
        return self.still(pending)

    def read_video(self, path: Path, detector: Any, onset: int | None, apex: int | None
                   ) -> tuple[Row, np.ndarray | None]:
        """With ``whole_videos``: a video's one row and its one model input (None with an error row)."""
        raise NotImplementedError(f"{type(self).__name__} reads videos frame by frame")


class FrameInput(ModelInput):
    name = "frame"


class WindowInput(ModelInput):
    name = "window"
    flush_while_decoding = False  # a window needs its track's consecutive detections

    def __init__(self, clip_frames: int):
        self.clip_frames = clip_frames

    def still(self, pending: Pending) -> tuple[Groups, np.ndarray]:
        groups, crops = super().still(pending)
        return groups, np.repeat(crops[:, None], self.clip_frames, axis=1)  # [N, T, H, W, 3]

    def video(self, pending: Pending) -> tuple[Groups, np.ndarray]:
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
        return groups, (np.stack(clips) if clips else np.zeros((0,), np.uint8))


class OnsetApexClips(ModelInput):
    name = "onset_apex"
    whole_videos = True

    def __init__(self, spec: Any):
        self.spec = spec  # unmask.data.onset_apex.OnsetApexInput: how the checkpoint's set was prepared

    def image_error(self, name: str) -> str | None:
        return (f"{name}: this model reads the frames from onset to apex of a video with their optical flow "
                "(paradigm clip_flow), not a single image")

    def read_video(self, path: Path, detector: Any, onset: int | None, apex: int | None
                   ) -> tuple[Row, np.ndarray | None]:
        """The video's one row, at the apex frame, and its model input ``[1, T + 1, S, S, 3]`` (None with an
        error row: a frame past the end, an unreadable file, no face at the onset)."""
        from unmask.data.video import header_fps
        from unmask.predict.media import frame_position

        base = dict(source=str(path), kind="video")
        try:
            if path.is_dir():  # a frame folder: the sheet's frame numbers -> positions
                onset, apex = (None if n is None else frame_position(path, n, name)
                               for name, n in (("onset", onset), ("apex", apex)))
            x, info = self.spec.video_input(path, detector, onset, apex)
        except UnmaskError as e:  # VideoError included: a frame past the end, an unreadable file
            return error_row(base, str(e)), None
        fps = header_fps(path)
        x0, y0, w, h = info["box"]
        row = dict(base, frame=info["apex"], time_s=round(info["apex"] / fps, 4) if fps else math.nan, face=0,
                   track=0, x=x0, y=y0, w=w, h=h, face_found=True, onset=info["onset"], apex_from=info["apex_from"],
                   apex_score=round(info["apex_score"], 5) if info["apex_from"] == "search" else math.nan)
        return row, x[None]


def model_input(model: Any, prep: dict[str, Any]) -> ModelInput:
    """The piece a checkpoint's model reads: from its ``preprocess`` paradigm and the model's ``clip_input``."""
    if prep.get("paradigm") == "clip_flow":
        from unmask.data.onset_apex import OnsetApexInput

        return OnsetApexClips(OnsetApexInput.from_preprocess(prep))
    clip_frames = clip_frames_of(model, prep)
    return WindowInput(clip_frames) if clip_frames else FrameInput()
