"""Video decoding with exact frame indices (PyAV)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unmask.errors import UnmaskError


class VideoError(UnmaskError):
    """A video that is missing, corrupt, or shorter than asked."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    num_frames: int
    fps: float
    width: int
    height: int


def probe(path: str | Path) -> VideoInfo:
    """Frame count (exact: counted by demuxing packets when the container does not say), fps and size."""
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"no video stream in {path}")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            width, height = stream.codec_context.width, stream.codec_context.height
            n = sum(1 for _ in container.decode(stream))
    except av.FFmpegError as e:
        raise VideoError(f"cannot decode video {path}: {e}") from None
    if n == 0:
        raise VideoError(f"video {path} has no decodable frames")
    return VideoInfo(path, n, fps, width, height)
