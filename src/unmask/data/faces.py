"""Face detection and cropping, for preparing datasets and for prediction on new images.

Detectors are created by name::

    det = create_detector("auto")        # per image: yuface, else haar, else the manifest's box
    faces = det.detect(image_rgb)        # [Detection(box=(x, y, w, h), score, source, landmarks), ...], best first
    crop = crop_face(image_rgb, faces[0].box, margin=0.2, size=224, angle=eye_angle(faces[0].landmarks))

=============  =========================================================================================
``auto``       per image, the first of these that finds a face: yuface (where importable), haar, and, given
               a manifest clip, annotated; each detection names the detector that found it (``source``)
``yuface``     libfacedetection's YuNet (the ``yuface`` package; its weights are compiled into the package);
               gives five landmarks (eyes, nose tip, mouth corners) for alignment
``haar``       OpenCV's frontal-face Haar cascade (ships with opencv); weaker, the fallback
``annotated``  the boxes of a manifest clip: the per-frame ``annotations`` CSV, else the clip's ``face_box``
``none``       the frames are already face crops: the whole frame is the face
=============  =========================================================================================

All images are RGB uint8 ``[H, W, 3]``. Scores lie in [0, 1]; detections below ``min_score`` or smaller than
``min_size`` pixels are dropped. ``annotated`` needs to know which clip and frame an image is, so it is
called as ``detect(image, clip=clip, frame=index)``; the others ignore those arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from unmask.errors import UnmaskError

if TYPE_CHECKING:
    from unmask.data.manifest import Clip

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


Point = tuple[float, float]


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float
    source: str = ""  # the detector that found it (set by FaceDetector.detect)
    landmarks: tuple[Point, ...] | None = None  # YuNet: eye, eye, nose tip, mouth corner, mouth corner


class FaceDetector:
    """Base class: ``detect(image_rgb) -> list[Detection]`` sorted by score, descending."""

    name = "base"
    needs_clip = False  # True when detect() needs clip= and frame= (boxes from a manifest)

    def __init__(self, min_score: float = 0.5, min_size: int = 20):
        self.min_score = min_score
        self.min_size = min_size

    def detect(self, image: np.ndarray, *, clip: Clip | None = None, frame: int | None = None) -> list[Detection]:
        _check_image(image)
        found = self._detect(image, clip, frame)
        h, w = image.shape[:2]
        kept = []
        for d in found:
            box = _clip_box(d.box, w, h)
            if box is not None and d.score >= self.min_score and min(box[2], box[3]) >= self.min_size:
                kept.append(Detection(box, float(d.score), d.source or self.name, d.landmarks))
        return sorted(kept, key=lambda d: d.score, reverse=True)

    def _detect(self, image, clip, frame) -> list[Detection]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_score={self.min_score}, min_size={self.min_size})"


class YuNetDetector(FaceDetector):
    """libfacedetection YuNet via ``yuface``; images are scaled so the longer side is at most ``max_side``
    (the library warns and degrades above 960 px; 640 halves the time of 960 and still finds faces of ~30 px
    in a 1920 px image)."""

    name = "yuface"

    def __init__(self, min_score: float = 0.5, min_size: int = 20, max_side: int = 640):
        super().__init__(min_score, min_size)
        import yuface

        self._yuface = yuface
        self.max_side = max_side

    def _detect(self, image, clip, frame):
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        small = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(small[:, :, ::-1])
        # yuface's own threshold is applied on a 0-100 scale; ours is applied after, on 0-1.
        confs, boxes, marks = self._yuface.detect(bgr, conf=0.0)  # marks: [N, 10] = x0 y0 ... x4 y4
        return [Detection(tuple(int(round(v / scale)) for v in b), float(c) / 100.0,
                          landmarks=tuple((float(m[2 * k]) / scale, float(m[2 * k + 1]) / scale) for k in range(5)))
                for c, b, m in zip(confs, boxes, marks)]


class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade. Score: the cascade's last-stage weight ``s`` squashed to
    ``s / (1 + s)`` so that it lies in [0, 1) like YuNet's (the default ``min_score`` 0.5 means ``s >= 1``)."""

    name = "haar"  # min_neighbors 8 (OpenCV suggests 3-6): fewer false faces on textured backgrounds

    def __init__(self, min_score: float = 0.5, min_size: int = 20, min_neighbors: int = 8):
        super().__init__(min_score, min_size)
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise UnmaskError(f"cannot load OpenCV's Haar cascade from {path}")
        self.min_neighbors = min_neighbors

    def _detect(self, image, clip, frame):
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        rects, _, weights = self._cascade.detectMultiScale3(
            grey, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(self.min_size, self.min_size),
            outputRejectLevels=True)
        return [Detection(tuple(int(v) for v in r), max(float(s), 0.0) / (1.0 + max(float(s), 0.0)))
                for r, s in zip(rects, np.ravel(weights))]


class WholeFrameDetector(FaceDetector):
    """The frames are already face crops."""

    name = "none"

    def _detect(self, image, clip, frame):
        h, w = image.shape[:2]
        return [Detection((0, 0, w, h), 1.0)]


class AnnotatedDetector(FaceDetector):
    """Boxes from the manifest: the clip's per-frame annotations CSV (``frame, x, y, w, h``), else its
    ``face_box``; no box for that frame means no face."""

    name = "annotated"
    needs_clip = True

    def __init__(self, min_score: float = 0.0, min_size: int = 1):
        super().__init__(min_score, min_size)

    def _detect(self, image, clip, frame):
        if clip is None or frame is None:
            raise UnmaskError("the 'annotated' detector takes its boxes from a manifest clip; "
                              "call detect(image, clip=clip, frame=index), or choose another detector")
        box = None
        if getattr(clip, "annotations", None):
            box = _annotation_boxes(str(clip.annotations)).get(int(frame))
        if box is None:
            box = getattr(clip, "face_box", None)
        return [] if box is None else [Detection(tuple(box), 1.0)]


class FallbackDetector(FaceDetector):
    """``auto``: per image, the first detector of the chain that finds a face (yuface where importable, then
    haar, then, for a manifest clip, its annotated box). A frame one detector misses is not lost while another
    finds it; each detection keeps the name of the one that did (``Detection.source``), so callers can count."""

    name = "auto"

    def __init__(self, min_score: float = 0.5, min_size: int = 20):
        super().__init__(0.0, 1)  # the members apply their own thresholds
        self.members = ([YuNetDetector(min_score, min_size)] if yuface_available() else []) + [
            HaarDetector(min_score, min_size)]
        self._annotated = AnnotatedDetector()

    def detect(self, image: np.ndarray, *, clip: Clip | None = None, frame: int | None = None) -> list[Detection]:
        _check_image(image)
        members = list(self.members)
        if clip is not None and frame is not None:
            members.append(self._annotated)
        for member in members:
            found = member.detect(image, clip=clip, frame=frame)
            if found:
                return found
        return []

    @property
    def chain(self) -> list[str]:
        return [m.name for m in self.members] + ["annotated"]


@lru_cache(maxsize=64)
def _annotation_boxes(path: str) -> dict[int, Box]:
    from unmask.data.manifest import read_annotations

    return read_annotations(path)["boxes"]


_DETECTORS = {cls.name: cls for cls in (FallbackDetector, YuNetDetector, HaarDetector, AnnotatedDetector,
                                        WholeFrameDetector)}


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return list(_DETECTORS)


def yuface_available() -> bool:
    try:
        import yuface  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_detector_name(name: str = "auto") -> str:
    """Check a detector name and return it (UnmaskError listing the names when unknown or not importable)."""
    if name not in _DETECTORS:
        raise UnmaskError(f"unknown face detector {name!r}; choose one of: {', '.join(_DETECTORS)}")
    if name == "yuface" and not yuface_available():
        raise UnmaskError("face detector 'yuface' needs the yuface package (pip install 'unmask[yuface]'; "
                          "wheels exist for CPython 3.11); or choose --detector haar")
    return name


def create_detector(name: str = "auto", **kwargs: Any) -> FaceDetector:
    """Create a detector by name (see :func:`list_detectors`); ``kwargs`` go to its constructor."""
    return _DETECTORS[resolve_detector_name(name)](**kwargs)


def best_face(detections: list[Detection]) -> Detection | None:
    """The face to keep when several are found: the largest (the subject is the nearest face; false positives
    and bystanders are smaller), ties broken by score."""
    if not detections:
        return None
    return max(detections, key=lambda d: (d.box[2] * d.box[3], d.score))


def describe_detector(name: str) -> str:
    """One line for the user: which detector, and for ``auto`` the chain it tries per frame."""
    if name != "auto":
        return name
    chain = ["yuface"] if yuface_available() else []
    why = "" if chain else "; yuface is not importable"
    return f"auto (per frame: {', then '.join(chain + ['haar', 'the manifest box'])}{why})"


def eye_angle(landmarks: Sequence[Sequence[float]] | np.ndarray | None) -> float:
    """The eye line's angle in degrees (clockwise on screen, as image y points down); 0 without landmarks.
    ``crop_face(..., angle=a)`` turns the face by it, so the eyes end level."""
    if not landmarks:
        return 0.0
    (x0, y0), (x1, y1) = sorted(landmarks[:2])  # the two eyes, left to right in the image
    return float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))


def crop_face(image: np.ndarray, box: Sequence[float], margin: float = 0.2, size: int = 224, pad: str = "black",
              angle: float = 0.0) -> np.ndarray:
    """Square crop around ``box``, resized to ``size x size`` (RGB uint8).

    The square's side is the box's longer side plus ``margin`` of it on every side
    (``side = max(w, h) * (1 + 2 * margin)``), centred on the box's centre. Where it leaves the image it is
    padded with black (``pad="black"``) or the replicated edge pixels (``pad="edge"``). ``angle`` (degrees,
    :func:`eye_angle`) turns the image about the box's centre first, so a tilted head comes out upright.
    """
    _check_image(image)
    if pad not in ("black", "edge"):
        raise UnmaskError(f"unknown pad {pad!r}; expected 'black' or 'edge'")
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise UnmaskError(f"cannot crop an empty box {tuple(box)}")
    side = max(1, int(round(max(w, h) * (1 + 2 * margin))))
    x0 = int(round(x + w / 2 - side / 2))
    y0 = int(round(y + h / 2 - side / 2))
    x1, y1 = x0 + side, y0 + side
    ih, iw = image.shape[:2]
    if angle:
        if x0 >= iw or y0 >= ih or x1 <= 0 or y1 <= 0:
            raise UnmaskError(f"box {tuple(box)} lies outside the {iw}x{ih} image")
        # Rotation about the square's centre, shifted so the square lands at (0, 0): one warp, no big border.
        m = cv2.getRotationMatrix2D((x0 + side / 2, y0 + side / 2), angle, 1.0)
        m[:, 2] -= (x0, y0)
        border = cv2.BORDER_CONSTANT if pad == "black" else cv2.BORDER_REPLICATE
        square = cv2.warpAffine(image, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=border,
                                borderValue=(0, 0, 0))
        return square if side == size else cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    pads = (max(0, -y0), max(0, y1 - ih), max(0, -x0), max(0, x1 - iw))  # top, bottom, left, right
    if any(pads):
        border = cv2.BORDER_CONSTANT if pad == "black" else cv2.BORDER_REPLICATE
        # A square far off the image would allocate a huge border; the box must touch the image.
        if x0 >= iw or y0 >= ih or x1 <= 0 or y1 <= 0:
            raise UnmaskError(f"box {tuple(box)} lies outside the {iw}x{ih} image")
        image = cv2.copyMakeBorder(image, *pads, border, value=(0, 0, 0))
        x0, y0 = x0 + pads[2], y0 + pads[0]
    square = image[y0:y0 + side, x0:x0 + side]
    if side == size:
        return np.ascontiguousarray(square)
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def _check_image(image) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        what = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise UnmaskError(f"expected an RGB uint8 image [H, W, 3], got {what}")


def _clip_box(box, width: int, height: int) -> Box | None:
    """Clamp a box to the image; None when nothing of it is left."""
    x, y, w, h = (int(v) for v in box)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0
