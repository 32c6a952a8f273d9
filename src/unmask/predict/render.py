"""What prediction draws, for both front ends (``unmask predict --annotate`` and ``unmask serve``).

Boxes and labels on an image (:func:`draw`), the annotated copy of an image or video, and the timeline of a
video's face track (:func:`timeline_series` -> :func:`plot_timeline`, a PNG). Every function reads the result
rows of :class:`unmask.predict.Predictor` (``unmask.results`` columns) and the checkpoint's tasks; neither
front end owns them, and this module imports neither.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unmask.errors import UnmaskError
from unmask.tasks import Task


# ------------------------------------------------------------------------------------------- text
def label_text(row: Mapping[str, Any], tasks: Sequence[Task]) -> str:
    """``felt: fear 0.62 | shown: happiness 0.91``: each task's title, prediction and confidence."""
    return " | ".join(f"{t.title}: {row[f'{t.name}_pred']} {row[f'{t.name}_conf']:.2f}" for t in tasks
                      if row.get(f"{t.name}_pred"))


def onset_apex_text(row: Mapping[str, Any], tasks: Sequence[Task]) -> str:
    """``clip.mp4: onset 7, apex 24 (searched, score 1.55) | emotion: happiness 0.81 (happiness 0.81, ...) | ...``
    (a multi-label task: the labels at >= 0.5, as the report thresholds them, then every label's probability)."""
    how = f"searched, score {row['apex_score']:.3f}" if row["apex_from"] == "search" else "given"
    parts = [f"{Path(row['source']).name}: onset {row['onset']}, apex {row['frame']} ({how})"]
    for t in tasks:
        probs = ", ".join(f"{x} {row[f'{t.name}_p_{x}']:.2f}" for x in t.labels)
        parts.append(f"{t.title}: {row[f'{t.name}_pred'] or '-'} ({probs})")
    return " | ".join(parts)


# ------------------------------------------------------------------------------------------- drawing
def draw(rgb: np.ndarray, rows: Sequence[Mapping[str, Any]], tasks: Sequence[Task]) -> np.ndarray:
    """Boxes and labels drawn on a copy of ``rgb`` (OpenCV); scale follows the image size."""
    import cv2

    img = rgb.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    thick = max(1, round(2 * scale))
    faces = [r for r in rows if r["face_found"]]
    if not faces:
        _text(img, "no face", 5, 5, scale, thick, (200, 200, 200))
    for r in faces:
        x, y, bw, bh = (int(r[k]) for k in ("x", "y", "w", "h"))
        colour = (40, 220, 40)
        cv2.rectangle(img, (x, y), (x + bw, y + bh), colour, thick + 1)
        (_, th), _ = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y - th - 12 if y - th - 12 >= 0 else min(y + bh + 4, h - th - 8)  # above the box, else below
        _text(img, label_text(r, tasks), x, ty, scale, thick, colour)
    return img


def _text(img, text, x, y, scale, thick, colour):
    """Text on a dark filled band, kept inside the image (long labels shift left)."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x = max(0, min(x, img.shape[1] - tw - 8))
    y = max(0, y)
    cv2.rectangle(img, (x, y), (x + tw + 8, y + th + base + 8), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 4, y + th + 4), font, scale, colour, thick, cv2.LINE_AA)


def _unique(path):
    n, out = 1, path
    while out.exists():
        out = path.with_name(f"{path.stem}_{n}{path.suffix}")
        n += 1
    return out


# ------------------------------------------------------------------------------------------- annotated copies
def annotate_all(df: pd.DataFrame, out_dir: Path, tasks: Sequence[Task], every: int = 1) -> list[Path]:
    """One annotated copy per readable input in ``out_dir``: ``<name>.annotated.<ext>`` (videos: ``.mp4``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src, g in df[(df.error == "") & ~df.apex].groupby("source", sort=False):
        path = Path(src)
        if g.kind.iloc[0] == "image":
            written.append(annotate_image(path, g.to_dict("records"), tasks, _unique(out_dir / f"{path.stem}.annotated{path.suffix.lower()}")))
        elif g.kind.iloc[0] == "video":
            written.append(annotate_video(path, g, tasks, _unique(out_dir / f"{path.stem}.annotated.mp4")))
            if g.face_found.any():  # each class's probability over time (a clip model: per window)
                written.append(write_timeline(g, df[(df.source == src) & df.apex], tasks,
                                              _unique(out_dir / f"{path.stem}.timeline.png")))
    return written


def write_timeline(frames: pd.DataFrame, apex: pd.DataFrame, tasks: Sequence[Task], out: Path) -> Path:
    """The longest face track's probabilities per sampled frame as a PNG (the web app's timeline figure)."""
    out.write_bytes(plot_timeline(tasks, timeline_series(tasks, frames, apex)))
    return out


def annotate_image(path: Path, rows: Sequence[Mapping[str, Any]], tasks: Sequence[Task], out: Path) -> Path:
    import cv2

    from unmask.predict.media import read_image

    img = draw(read_image(path), rows, tasks)
    if not cv2.imwrite(str(out), img[:, :, ::-1]):
        raise UnmaskError(f"cannot write {out}")
    return out


def annotate_video(path: Path, rows: pd.DataFrame, tasks: Sequence[Task], out: Path) -> Path:
    """All frames re-encoded (H.264, even size); each shows the boxes of the latest sampled frame."""
    from unmask.data.video import header_fps, iter_frames, write_video

    by_frame = {int(f): g.to_dict("records") for f, g in rows.groupby("frame")}  # type: ignore[arg-type]

    def frames() -> Iterator[np.ndarray]:
        current: list = []
        for index, rgb in iter_frames(path):
            current = by_frame.get(index, current)
            yield draw(rgb, current, tasks) if current else rgb

    write_video(frames(), out, header_fps(path) or 25.0, crf=23)  # a preview, not an archive
    return out


# ------------------------------------------------------------------------------------------- timeline
def timeline_series(tasks: Sequence[Task], frames_df: pd.DataFrame, apex_df: pd.DataFrame) -> dict[str, Any]:
    """The longest face track's probabilities per sampled frame: ``{track, n_tracks, time_s, frame, apex_s,
    p: {task: {label: [...]}}}`` (times are frame indices when the video has no frame rate)."""
    faces = frames_df[frames_df.face_found]
    track = int(faces.track.value_counts().idxmax())
    rows = faces[faces.track == track].sort_values("frame")
    t = rows.time_s.to_numpy(float)
    t = np.where(np.isnan(t), rows.frame.to_numpy(float), t)
    apex_frames = apex_df.loc[apex_df.track == track, "frame"].astype(int).tolist()
    apex_s = float(t[rows.frame.astype(int).tolist().index(apex_frames[0])]) if apex_frames else None
    return {"track": track, "n_tracks": int(faces.track.nunique()), "time_s": t.tolist(),
            "frame": rows.frame.astype(int).tolist(), "apex_s": apex_s,
            "p": {task.name: {label: rows[f"{task.name}_p_{label}"].astype(float).tolist() for label in task.labels}
                  for task in tasks}}


def plot_timeline(tasks: Sequence[Task], series: Mapping[str, Any]) -> bytes:
    """``series`` from :func:`timeline_series`; one panel per task, a line per label.

    A ``Figure`` with the Agg canvas, not pyplot: no global figure state, so a server thread can draw safely.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.2 * len(tasks) + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(tasks), 1, sharex=True, squeeze=False)[:, 0]
    t = series["time_s"]
    for ax, task in zip(axes, tasks):
        for label in task.labels:
            ax.plot(t, series["p"][task.name][label], marker="." if len(t) < 40 else None, label=label)
        if series["apex_s"] is not None:
            ax.axvline(series["apex_s"], color="k", linestyle="--", linewidth=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"p ({task.title})")
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", frameon=False)
    axes[-1].set_xlabel("time (s); dashed: the apex frame the table shows")
    many = f" (the longest of {series['n_tracks']} tracks)" if series["n_tracks"] > 1 else ""
    fig.suptitle(f"face track {series['track']}{many}", fontsize="medium")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
