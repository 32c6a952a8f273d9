"""Faces across the sampled frames of a video: greedy IoU tracks, and the apex of a track's features (the frame
whose expression differs most from the track's neutral start; ``unmask predict --apex-search``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class FaceTracker:
    """Greedy IoU tracking across sampled frames: a face continues the track whose last box overlaps it most
    (IoU >= 0.3), else starts a new one. Enough to give the apex search one feature sequence per person."""

    def __init__(self, min_iou: float = 0.3):
        self.last: dict[int, tuple] = {}
        self.min_iou = min_iou

    def assign(self, rows: list[dict]) -> None:
        taken = set()
        for r in rows:
            if not r.get("face_found"):
                r["track"] = -1
                continue
            box = (r["x"], r["y"], r["w"], r["h"])
            best = max(((iou(box, b), t) for t, b in self.last.items() if t not in taken), default=(0.0, -1))
            t = best[1] if best[0] >= self.min_iou else len(self.last)
            taken.add(t)
            self.last[t] = box
            r["track"] = t


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0, min(ax1, bx1) - max(a[0], b[0])), max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


def apex_index(features: np.ndarray, neutral_frames: int = 3, smooth: int = 3) -> tuple[int, float]:
    """Index of the apex in a track's features ``[T, D]`` and its score: the cosine distance of each frame's
    features to the mean of the first ``neutral_frames``, averaged over ``smooth`` frames, at its largest (the
    apex search of :mod:`unmask.predict`)."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    k = max(1, min(neutral_frames, len(f) // 4))  # a short track keeps most frames as candidates
    ref = f[:k].mean(0)
    ref /= max(float(np.linalg.norm(ref)), 1e-12)
    d = 1.0 - f @ ref  # [T] cosine distance to the neutral start
    if smooth > 1 and len(d) > 1:
        half = smooth // 2
        d = np.array([d[max(0, i - half):i + half + 1].mean() for i in range(len(d))])
    i = int(np.argmax(d))
    return i, float(d[i])
