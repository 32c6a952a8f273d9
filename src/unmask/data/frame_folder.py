"""A folder of numbered frame images read as a video (DFEW, FERV39k, MAFW and CASME II ship clips this way).

The frames are the folder's image files (``.jpg .jpeg .png .bmp``) in *natural* order: the digits in a name
compare as numbers, so ``img2.jpg`` comes before ``img10.jpg`` and ``00002.jpg`` before ``00010.jpg``. An image
is decoded (OpenCV, to RGB) only when its pixels are asked for, so ``probe`` and ``read_frames`` cost one decode
per frame they use, not per frame in the folder. :func:`unmask.data.video._decoded` hands a folder here, so
every reader in :mod:`unmask.data.video` (``probe``, ``read_frames``, ``iter_frames``) accepts one. This module
is the layer below :mod:`unmask.data.video` and imports nothing from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from unmask.errors import VideoError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def natural_key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name))


def frame_files(folder: str | Path) -> list[Path]:
    """The frame images of ``folder`` in natural order."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


def frame_folder(path: str | Path) -> list[Path]:
    """The images of a frame folder in frame order (natural order of the file names)."""
    path = Path(path)
    if not path.is_dir():
        raise VideoError(f"frame folder not found: {path}")
    images = frame_files(path)
    if not images:
        raise VideoError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in frame folder {path}")
    return images


def read_image(path: Path) -> np.ndarray:
    """One frame image as RGB uint8 ``[H, W, 3]``; a missing or corrupt file is a :class:`VideoError`."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VideoError(f"cannot read frame image {path} (missing or corrupt)")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


class _Frame:
    """What :mod:`unmask.data.video` reads of a decoded frame: size, timestamps (none), and RGB on demand."""

    pts = None
    time_base = None

    def __init__(self, path: Path):
        self.path = path
        self._rgb: np.ndarray | None = None

    def to_ndarray(self, format: str = "rgb24") -> np.ndarray:  # noqa: A002  (PyAV's name)
        if self._rgb is None:
            self._rgb = read_image(self.path)
        return self._rgb

    @property
    def width(self) -> int:
        return self.to_ndarray().shape[1]

    @property
    def height(self) -> int:
        return self.to_ndarray().shape[0]


class _Stream:
    average_rate = None  # a frame folder has no frame rate; probe reports 0
    guessed_rate = None
    start_time = 0


def decoded_folder(folder: Path) -> Iterator[tuple[int, _Frame, _Stream]]:
    """``(index, frame, stream)`` for each image, as :func:`unmask.data.video._decoded` yields video frames."""
    files = frame_folder(folder)  # a missing or empty folder: VideoError, said in one place
    stream = _Stream()
    for i, p in enumerate(files):
        yield i, _Frame(p), stream
