"""Video decoding with exact frame indices (PyAV).

A frame index is the 0-based position of a frame in the decoded, presentation-ordered sequence, the same
sequence that :func:`probe` counts. Frames are never reached by seeking: seeking lands on key frames and
containers disagree about timestamps, so the index a seek returns is not reliably the one asked for. Instead
a video is decoded once from the start, in order, and stops after the last frame needed. Only the frames
asked for are converted to RGB, which is the expensive part after decoding itself.

A *frame folder* (a directory of numbered images, as DFEW, FERV39k, CASME II and SAMM ship their clips, e.g.
``sub01/EP02_01f/img46.jpg``) reads as a video whose frames are its images in natural order (``img9`` before
``img10``): :func:`frame_folder` lists them, and :func:`probe`, :func:`read_frames` and :func:`iter_frames`
accept the folder (see :mod:`unmask.data.frame_folder`). Its fps is unknown (0).

Errors (missing file, corrupt data, an index beyond the end) raise :class:`VideoError`, an
:class:`~unmask.errors.UnmaskError` whose message names the file and, where known, the frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# both defined a layer below (frame folders, errors) and importable from here, as before
from unmask.data.frame_folder import frame_folder
from unmask.errors import VideoError


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    num_frames: int
    fps: float
    width: int
    height: int


def _decoded(path: Path) -> Iterator[tuple[int, object, object]]:
    """Yield ``(index, av.VideoFrame, stream)`` for every decoded frame, mapping FFmpeg errors to VideoError.

    The container stays open while the generator is alive; closing the generator closes it.
    """
    import av

    if path.is_dir():
        from unmask.data.frame_folder import decoded_folder

        yield from decoded_folder(path)
        return
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    index = -1
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"no video stream in {path}")
            stream = container.streams.video[0]
            # Frame threading changes nothing in the output order, and roughly halves decode time.
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                index += 1
                yield index, frame, stream
    except av.FFmpegError as e:
        where = "while opening it" if index < 0 else f"after frame {index}"
        raise VideoError(f"cannot decode video {path} ({where}): {e}") from None


def frame_numbers(path: str | Path) -> list[int]:
    """The number each image of a frame folder carries in its name (``img46.jpg`` -> 46; the last number), in
    frame order."""
    import re

    return [int(found[-1]) if (found := re.findall(r"\d+", p.stem)) else -1 for p in frame_folder(path)]


def _read_image(p: Path) -> np.ndarray:
    from unmask.data.frame_folder import read_image

    return read_image(p)


def probe(path: str | Path) -> VideoInfo:
    """Exact frame count, fps and size.

    The count comes from decoding (no RGB conversion): container headers and even packet counts can be wrong
    (edit lists drop pre-roll packets, e.g. 98 packets but 95 frames), and an index must mean a decodable frame.
    """
    path = Path(path)
    if path.is_dir():
        images = frame_folder(path)
        h, w = _read_image(images[0]).shape[:2]
        return VideoInfo(path, len(images), 0.0, w, h)
    n, fps, width, height = 0, 0.0, 0, 0
    for index, frame, stream in _decoded(path):
        if index == 0:
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            width, height = frame.width, frame.height
        n = index + 1
    if n == 0:
        raise VideoError(f"video {path} has no decodable frames")
    return VideoInfo(path, n, fps, width, height)


def header_fps(path: str | Path) -> float:
    """The stream's average frame rate from the container header, without decoding; 0 when unknown (a frame
    folder, an unreadable header: decoding is what reports those)."""
    import av

    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            return float(s.average_rate or s.guessed_rate or 0)
    except (av.FFmpegError, IndexError, OSError):
        return 0.0


def _rgb(frame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")  # [H, W, 3] uint8


def read_frames(path: str | Path, indices: Iterable[int]) -> dict[int, np.ndarray]:
    """Decode the frames at ``indices`` (any order, duplicates allowed) as ``{index: RGB uint8 [H, W, 3]}``.

    The video is decoded once, in order, up to the largest index. An index beyond the end raises
    :class:`VideoError` naming the file, the frame and the video's length.
    """
    path = Path(path)
    wanted = sorted({int(i) for i in indices})
    if not wanted:
        return {}
    if wanted[0] < 0:
        raise VideoError(f"{path}: negative frame index {wanted[0]}")
    last = wanted[-1]
    if path.is_dir():
        images = frame_folder(path)
        if last >= len(images):
            raise VideoError(f"{path}: frame {last} beyond the folder's length ({len(images)} images, "
                             f"last index {len(images) - 1})")
        return {i: _read_image(images[i]) for i in wanted}
    todo = set(wanted)
    out: dict[int, np.ndarray] = {}
    n = 0
    frames = _decoded(path)
    try:
        for index, frame, _ in frames:
            n = index + 1
            if index in todo:
                out[index] = _rgb(frame)
            if index >= last:
                break
    finally:
        frames.close()  # stop decoding now: the rest of the video is not needed
    if len(out) < len(todo):
        missing = sorted(todo - out.keys())
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise VideoError(f"{path}: frame {shown} beyond the video's length ({n} frames, last index {n - 1})")
    return out


def iter_frames(path: str | Path, every: int = 1, start: int = 0, stop: int | None = None
                ) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, RGB uint8 [H, W, 3])`` for ``index`` in ``range(start, stop, every)``.

    ``stop=None`` runs to the end of the video; a ``stop`` beyond the end simply ends early (a stream), while
    a ``start`` beyond the end raises :class:`VideoError`.
    """
    for index, _, rgb in iter_timed_frames(path, every, start, stop):
        yield index, rgb


def iter_timed_frames(path: str | Path, every: int = 1, start: int = 0, stop: int | None = None
                      ) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """As :func:`iter_frames`, with each frame's presentation time in seconds from the stream's start
    (``(pts - start_time) * time_base``; None where the container gives no timestamp). On variable-frame-rate
    video this is when the frame is shown; ``index / average fps`` is not."""
    path = Path(path)
    if every < 1 or start < 0 or (stop is not None and stop < start):
        raise VideoError(f"{path}: bad frame range start={start}, stop={stop}, every={every}")
    n = 0
    for index, frame, stream in _decoded(path):
        n = index + 1
        if stop is not None and index >= stop:
            return
        if index >= start and (index - start) % every == 0:
            t = None
            if frame.pts is not None and frame.time_base is not None:
                t = float((frame.pts - (stream.start_time or 0)) * frame.time_base)
            yield index, t, _rgb(frame)
    if start >= n and (stop is None or stop > start):
        raise VideoError(f"{path}: start frame {start} beyond the video's length ({n} frames)")


def _codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(frames: Iterable[np.ndarray], path: Path, fps: float, crf: int = 18) -> int:
    """Encode RGB frames to an mp4 at ``path`` (yuv420p; libx264 at ``crf`` if available, else high-quality
    mpeg4); frames are cropped to even sides (yuv420p needs them). The same frames give the same file.
    Returns the number of frames written."""
    from fractions import Fraction

    import av

    n = 0
    with av.open(str(path), "w", format="mp4") as container:
        codec = _codec()
        rate = Fraction(fps).limit_denominator(1001)
        stream = container.add_stream(codec, rate=rate)
        stream.codec_context.time_base = 1 / rate
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            # mbtree=0: with macroblock-tree rate control this x264 build is not bit-reproducible from run to
            # run (measured), and identical seeds must give identical videos
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}
        else:
            stream.codec_context.qscale = 2
        for img in frames:
            img = np.ascontiguousarray(img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2])
            if n == 0:
                stream.width, stream.height = img.shape[1], img.shape[0]
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = n  # explicit timestamps: without them the encoder's output is not reproducible
            container.mux(stream.encode(frame))
            n += 1
        container.mux(stream.encode())
    return n
