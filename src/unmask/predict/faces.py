"""Faces and tracks: the detector prediction uses, every face of a frame cut as training cut it, face tracks
across a video's sampled frames, and the apex row of each track.

A frame's faces become rows (:mod:`unmask.predict.rows`) that wait, with their crops, in a ``pending`` list
for a batched model pass; the model inputs a paradigm needs are cut from those crops
(:mod:`unmask.predict.inputs`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from unmask.errors import UnmaskError
from unmask.tracking import FaceTracker, apex_index

log = logging.getLogger("unmask")

Row = dict[str, Any]
Pending = list[tuple[Row, np.ndarray]]  # rows waiting for the model, each with its face crop [H, W, 3]

__all__ = ["FaceFinder", "FaceTracker", "Pending", "Row", "apex_rows", "make_detector"]


def make_detector(detector: Any, trained_with: str | None) -> tuple[Any, str]:
    """``(detector, note)``: a given :class:`~unmask.data.faces.FaceDetector`, a named one, or the checkpoint's
    (``trained_with``); a checkpoint trained on manifest boxes gets ``auto``, and the note says why (logged once)."""
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


class FaceFinder:
    """Every face of a frame, detected and cropped with the checkpoint's margin and crop size."""

    def __init__(self, detector: Any, margin: float, crop_size: int):
        self.detector, self.margin, self.crop_size = detector, margin, crop_size

    def frame_rows(self, rgb: np.ndarray, base: Row, pending: Pending, frame: int | None = None) -> list[Row]:
        """Detect and crop every face of one frame; the rows wait in ``pending`` for a batched model pass.
        No face: one ``face_found=False`` row, never a silent skip."""
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


def apex_rows(rows: list[Row], features: dict[int, np.ndarray], neutral_frames: int, window: int) -> list[Row]:
    """Per face track, a copy of the row at its apex (``apex=True``, ``apex_score``): the frame whose feature is
    furthest from the track's neutral start (:func:`unmask.tracking.apex_index`). ``features``: ``id(row)`` ->
    the row's backbone feature."""
    tracks: dict[int, list[Row]] = {}
    for r in rows:
        if r.get("face_found") and id(r) in features:
            tracks.setdefault(r["track"], []).append(r)
    out = []
    for _, track in sorted(tracks.items()):
        feats = np.stack([features[id(r)] for r in track])  # [T, D]
        i, score = apex_index(feats, neutral_frames, window)
        out.append(dict(track[i], apex=True, apex_score=round(float(score), 5)))
    return out
