"""Media in: which files are images or videos, the inputs a path list expands to, and images as RGB arrays.

Videos and frame folders are decoded by :mod:`unmask.data.video` (exact frame indices); this module only
decides what a path is and reads still images.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from unmask.errors import UnmaskError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def media_kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTENSIONS else "video" if ext in VIDEO_EXTENSIONS else None


def find_media(inputs: Iterable[str | Path], sequences: bool = False) -> list[Path]:
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


def as_rgb(img: Any) -> np.ndarray:
    """An image given as a path, a PIL image or an array -> RGB uint8 ``[H, W, 3]`` (a grey array is repeated)."""
    if isinstance(img, np.ndarray):
        if img.dtype == np.uint8 and img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise UnmaskError(f"expected an RGB uint8 image [H, W, 3], got {img.dtype} {img.shape}")
        return np.ascontiguousarray(img)
    if hasattr(img, "convert"):  # PIL image
        return np.asarray(img.convert("RGB")).copy()
    return read_image(img)


def frame_position(folder: Path, number: int, name: str) -> int:
    """The position (0-based) of the image numbered ``number`` in a frame folder; UnmaskError naming the range."""
    from unmask.data.video import frame_numbers

    numbers = frame_numbers(folder)
    if number not in numbers:
        raise UnmaskError(f"--{name} {number}: no image numbered {number} in {folder} (numbers "
                          f"{min(numbers)}-{max(numbers)})")
    return numbers.index(number)
