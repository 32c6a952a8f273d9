"""A second, independent renderer of masked-expression videos: real face photos, warped (``unmask synth --kind photo``).

Why it exists: ``unmask synth`` draws cartoon faces, and a model that has only seen them may learn that
renderer rather than expressions. This one starts from photos of *real* people, finds the face and its five
landmarks with a real detector (YuNet through ``yuface``, :func:`unmask.data.faces.create_detector`) and
animates expressions with smooth geometric warps around those landmarks, plus a few shading cues. Nothing is
shared with the cartoon renderer but the clip paradigm and the emotion prototypes (EMFACS, the same AU
combinations as :data:`unmask.synth.masked.PROTOTYPES`, and the same leakage rule: at the apex the felt emotion
survives on the upper-face AUs). Other faces, other frame size (224x256 portrait), frame rate (30 fps),
codec (Motion JPEG in AVI), timing, head motion and noise.

How an AU moves the face (our decisions; distances in units of the interocular distance ``d``, ``+y`` down,
each handle a Gaussian of width ``sigma`` around a point placed from the landmarks; a frame's displacement
field is the sum of every AU's field times its intensity, applied with ``cv2.remap``):

====  ================================  ========================================================
AU    where                              how
====  ================================  ========================================================
01    inner brows (above inner eyes)     up 0.13
02    outer brows                        up 0.13
04    inner brows                        down 0.10 and 0.06 toward the midline; glabella darkened
05    upper lids                         up 0.06 (eyes open wider)
06    cheeks under the eyes              up 0.07; a slight flush
07    lower lids                         up 0.05, upper lids down 0.02 (eyes narrow)
09    nose wings; upper lip              up 0.08; up 0.05; nose bridge darkened (wrinkles)
12    mouth corners                      up 0.12 and out 0.10
15    mouth corners                      down 0.12 and in 0.02
16    lower lip                          down 0.08
20    mouth corners                      out 0.12, down 0.02
23    mouth corners, lips                in 0.06, lips together
25    lower lip                          down 0.06; a dark opening between the lips
26    jaw (chin and lower lip)           down 0.16; the opening grows
====  ================================  ========================================================

Identities are the source faces: one subject per photo (or video frame). They are few and real; the
renderer never invents a new person, and it does not augment identities (no flipped or recoloured copies
counted as new subjects). Within a subject, clips vary by per-clip lighting/colour gains, head motion,
timing, AU intensity jitter and sensor noise. The warps are not muscle movement: skin does not fold, teeth
do not appear, wrinkles are shading. Photos that are not neutral (two source photos smile, one is surprised)
keep that expression underneath every clip of that subject.

Determinism: a subject's gain from the seed sequence ``(seed, 77, 1, subject)``, everything per clip from
``(seed, 77, 2, subject, pair)``; the same seed writes the same frames (Motion JPEG encodes each frame on its own).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from unmask.emotions import EMOTIONS, MFED_TASKS, masked_pairs
from unmask.errors import UnmaskError
from unmask.io import claim_output

if TYPE_CHECKING:
    from unmask.data.faces import FaceDetector
    from unmask.data.manifest import Clip

#: The sources in the project's real-face fixtures folder (``shared/data/faces``): (file, frame or None).
#: Six different people; video frames chosen by eye as the most neutral ones.
DEFAULT_SOURCES: tuple[tuple[str, int | None], ...] = (
    ("single_face.mp4", 12),            # a man, neutral, frontal
    ("carphone.mp4", 20),               # a man in a car, low resolution (176x144)
    ("WolfgangLanger_Pexels.mp4", 240),  # a woman, near neutral
    ("0-f15-hao-ph.jpg", None),          # a woman, posed happiness
    ("single_face.jpg", None),           # a man, smiling
    ("0-f1-su-ph.jpg", None),            # a woman, posed surprise
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

#: AUs this renderer animates (annotation-column order); the same names as the cartoon renderer's.
AUS: tuple[str, ...] = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09",
                        "AU12", "AU15", "AU16", "AU20", "AU23", "AU25", "AU26")


@dataclass(frozen=True)
class PhotoConfig:
    """Every parameter of the photo renderer; saved as ``photo.json`` next to the manifest."""

    faces: str = ""                 # folder of source photos/videos
    subjects: int = 0               # 0: every source found; else the first N
    seed: int = 0
    width: int = 224
    height: int = 256
    fps: float = 30.0
    preset: str = "default"
    leak: float = 0.35
    lower_leak_ratio: float = 0.25
    onset_strength: float = 1.0
    congruent: bool = False
    strength: float = 1.0           # warp gain (1: the table in the module docstring)
    jitter: float = 0.05
    motion: float = 1.0
    noise: float = 1.0
    quality: int = 3                # Motion JPEG qscale (2 best .. 31 worst)

    @classmethod
    def from_preset(cls, preset: str = "default", **overrides: Any) -> PhotoConfig:
        from unmask.synth.masked import from_preset

        return from_preset(cls, preset, overrides, "photo-render")

    def validated(self) -> PhotoConfig:
        problems = []
        if self.subjects < 0:
            problems.append(f"subjects must not be negative (got {self.subjects})")
        if self.width < 96 or self.height < 96 or self.width % 2 or self.height % 2:
            problems.append(f"size must be even and at least 96x96 (got {self.width}x{self.height})")
        from unmask.synth.masked import paradigm_problems

        problems += paradigm_problems(self)
        if not 0 <= self.strength <= 2:
            problems.append(f"strength must be within [0, 2] (got {self.strength})")
        if not 2 <= self.quality <= 31:
            problems.append(f"quality must be within [2, 31] (got {self.quality})")
        if problems:
            raise UnmaskError("invalid photo-render configuration", problems)
        return self

    def pairs(self) -> list[tuple[str, str]]:
        return masked_pairs() + ([(e, e) for e in EMOTIONS] if self.congruent else [])


# ---------------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Source:
    path: Path
    frame: int | None = None  # a video's frame; None for a photo

    @property
    def label(self) -> str:
        return self.path.name + ("" if self.frame is None else f"#{self.frame}")


def find_sources(folder: str | Path) -> list[Source]:
    """The sources in ``folder``: :data:`DEFAULT_SOURCES` where those files are there, else every image in it
    (sorted by name), one subject each."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UnmaskError(f"faces folder not found: {folder}")
    known = [Source(folder / f, i) for f, i in DEFAULT_SOURCES if (folder / f).is_file()]
    if known:
        return known
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise UnmaskError(f"no face photos ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return [Source(p) for p in images]


def load_source(source: Source) -> np.ndarray:
    """The source image, RGB uint8."""
    if source.frame is None:
        img = cv2.imread(str(source.path), cv2.IMREAD_COLOR)
        if img is None:
            raise UnmaskError(f"cannot read image {source.path}")
        return np.ascontiguousarray(img[:, :, ::-1])
    from unmask.data.video import read_frames

    return read_frames(source.path, [source.frame])[source.frame]


@dataclass(frozen=True)
class Face:
    """A source face in the canonical frame: image (float32 RGB), 5 landmarks, the detector's box."""

    image: np.ndarray
    landmarks: np.ndarray  # [5, 2]: eye, eye (left to right in the image), nose tip, mouth corner, mouth corner
    box: tuple[float, float, float, float]  # x, y, w, h
    source: str

    @property
    def iod(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))


def canonical_face(source: Source, width: int, height: int, detector: FaceDetector | None = None) -> Face:
    """Detect the face (YuNet), then rotate, scale and crop the image so the eyes are level, their midpoint
    at (0.5 W, 0.40 H) and 0.30 W apart; landmarks and box are mapped the same way."""
    from unmask.data.faces import best_face, create_detector

    image = load_source(source)
    det = detector or create_detector("yuface")
    face = best_face(det.detect(image))
    if face is None or not face.landmarks:
        raise UnmaskError(f"no face with landmarks found in {source.label}")
    lm = np.array(face.landmarks, dtype=np.float64)
    eyes = lm[:2][np.argsort(lm[:2, 0])]
    lm[:2] = eyes
    mouth = lm[3:][np.argsort(lm[3:, 0])]
    lm[3:] = mouth
    centre = eyes.mean(0)
    dx, dy = eyes[1] - eyes[0]
    angle = math.degrees(math.atan2(dy, dx))
    scale = 0.30 * width / max(math.hypot(dx, dy), 1e-6)
    M = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    M[:, 2] += (0.5 * width - centre[0], 0.40 * height - centre[1])
    out = cv2.warpAffine(image, M, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
    lm_c = np.c_[lm, np.ones(5)] @ M.T
    x, y, w, h = face.box
    cx, cy = np.array([x + w / 2, y + h / 2, 1.0]) @ M.T
    box = (float(cx - w * scale / 2), float(cy - h * scale / 2), float(w * scale), float(h * scale))
    return Face(out.astype(np.float32), lm_c, box, source.label)


# ---------------------------------------------------------------------------------------------- AU fields
def _handles(lm: np.ndarray) -> dict[str, list[tuple[np.ndarray, float, np.ndarray]]]:
    """Per AU, Gaussian handles ``(centre px, sigma px, displacement px per unit intensity)`` from landmarks."""
    le, re, nose, ml, mr = lm
    d = float(np.linalg.norm(re - le))
    ex = (re - le) / d                       # towards the image's right
    ey = np.array([-ex[1], ex[0]])           # down
    mouth = (ml + mr) / 2

    def p(base, u, v):
        return base + d * (u * ex + v * ey)

    def v(u, w):
        return d * (u * ex + w * ey)

    s = 0.16 * d
    brows_in = [(p(le, 0.15, -0.38), -1), (p(re, -0.15, -0.38), 1)]    # (point, side: -1 left, +1 right)
    brows_out = [(p(le, -0.18, -0.33), -1), (p(re, 0.18, -0.33), 1)]
    corners = [(ml, -1), (mr, 1)]
    lower_lip = p(mouth, 0, 0.12)
    return {
        "AU01": [(c, s, v(0, -0.13)) for c, _ in brows_in],
        "AU02": [(c, s, v(0, -0.13)) for c, _ in brows_out],
        "AU04": [(c, s, v(-0.06 * side, 0.10)) for c, side in brows_in],
        "AU05": [(p(e, 0, -0.09), 0.09 * d, v(0, -0.06)) for e in (le, re)],
        "AU06": [(p(e, 0, 0.38), 0.2 * d, v(0, -0.07)) for e in (le, re)],
        "AU07": [(p(e, 0, 0.08), 0.09 * d, v(0, -0.05)) for e in (le, re)]
        + [(p(e, 0, -0.09), 0.08 * d, v(0, 0.02)) for e in (le, re)],
        "AU09": [(p(nose, 0.17 * side, 0.02), 0.13 * d, v(0, -0.08)) for side in (-1, 1)]
        + [(p(mouth, 0, -0.12), 0.15 * d, v(0, -0.05))],
        "AU12": [(c, 0.2 * d, v(0.10 * side, -0.12)) for c, side in corners],
        "AU15": [(c, 0.2 * d, v(-0.02 * side, 0.12)) for c, side in corners],
        "AU16": [(lower_lip, 0.16 * d, v(0, 0.08))],
        "AU20": [(c, 0.2 * d, v(0.12 * side, 0.02)) for c, side in corners],
        "AU23": [(c, 0.18 * d, v(-0.06 * side, 0)) for c, side in corners]
        + [(p(mouth, 0, -0.08), 0.12 * d, v(0, 0.02)), (lower_lip, 0.12 * d, v(0, -0.02))],
        "AU25": [(lower_lip, 0.16 * d, v(0, 0.06))],
        "AU26": [(p(mouth, 0, 0.45), 0.42 * d, v(0, 0.16)), (lower_lip, 0.2 * d, v(0, 0.05))],
    }


def _gauss(shape, centre, sigma) -> np.ndarray:
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma * sigma)).astype(np.float32)


def _ellipse(shape, centre, ax, ay) -> np.ndarray:
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((x - centre[0]) / max(ax, 1e-3)) ** 2 + ((y - centre[1]) / max(ay, 1e-3)) ** 2
    return np.clip(1.5 - r, 0, 1).astype(np.float32) ** 2


@dataclass(frozen=True)
class Rig:
    """Per-subject precomputed fields: displacement [AU][H, W, 2] and shading [AU][H, W, 3] per unit."""

    face: Face
    fields: dict[str, np.ndarray]
    shades: dict[str, np.ndarray]


def build_rig(face: Face) -> Rig:
    H, W = face.image.shape[:2]
    fields_ = {}
    for au, handles in _handles(face.landmarks).items():
        f = np.zeros((H, W, 2), np.float32)
        for c, s, disp in handles:
            f += _gauss((H, W), c, s)[..., None] * disp.astype(np.float32)
        fields_[au] = f
    le, re, nose, ml, mr = face.landmarks
    d = face.iod
    mid, mouth = (le + re) / 2, (ml + mr) / 2
    dark = np.array([1, 1, 1], np.float32)
    red = np.array([-0.02, 0.05, 0.06], np.float32)  # a flush: less green and blue
    shades = {  # multiplicative darkening per unit intensity, in the canonical frame (warped with the face)
        "AU04": _gauss((H, W), mid + (0, -0.3 * d), 0.1 * d)[..., None] * 0.18 * dark,
        "AU06": sum(_gauss((H, W), e + (0, 0.45 * d), 0.2 * d) for e in (le, re))[..., None] * red,
        "AU09": _gauss((H, W), (mid + nose) / 2 + (0, -0.1 * d), 0.1 * d)[..., None] * 0.22 * dark,
        "AU25": _ellipse((H, W), mouth + (0, 0.04 * d), 0.24 * d, 0.035 * d)[..., None] * 0.55 * dark,
        "AU26": _ellipse((H, W), mouth + (0, 0.08 * d), 0.22 * d, 0.08 * d)[..., None] * 0.55 * dark,
    }
    return Rig(face, fields_, shades)


def displacement(rig: Rig, aus: dict[str, float], strength: float = 1.0) -> np.ndarray:
    """The frame's displacement field [H, W, 2] (px; content at ``x`` moves to ``x + D``)."""
    D = np.zeros_like(next(iter(rig.fields.values())))
    for au, a in aus.items():
        if a and au in rig.fields:
            D += (strength * a) * rig.fields[au]
    return D


def render_expression(rig: Rig, aus: dict[str, float], strength: float = 1.0) -> np.ndarray:
    """The canonical face with ``aus`` applied: shading, then the warp (float32 RGB, 0..255)."""
    img = rig.face.image
    shade = np.zeros_like(img)
    for au, s in rig.shades.items():
        a = min(aus.get(au, 0.0), 1.5) * min(strength, 1.0)
        if a:
            shade += a * s
    if shade.any():
        img = img * np.clip(1 - shade, 0.2, 1.2)
    H, W = img.shape[:2]
    D = displacement(rig, aus, strength)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    return cv2.remap(img, x - D[..., 0], y - D[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


# ---------------------------------------------------------------------------------------------- clip plan
def subject_name(index: int) -> str:
    return f"p{index + 1:02d}"


def clip_name(subject: int, true: str, disguised: str) -> str:
    return f"{subject_name(subject)}_{true}_as_{disguised}"


def _rng(config: PhotoConfig, *key) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([config.seed, 77, *key]))


@dataclass(frozen=True)
class PhotoPlan:
    clip_id: str
    subject: int
    true: str
    disguised: str
    onset: int
    apex: int
    offset: int
    aus: list[dict[str, float]]
    poses: list[tuple[float, float, float, float]]  # dx, dy (px), roll (deg), scale
    gains: tuple[float, float, float]  # per-channel colour gain (lighting) of this clip
    noise_seed: int


def _smooth(f, keys):
    out = np.full(f.shape, keys[0][1], dtype=np.float64)
    for (f0, v0), (f1, v1) in itertools.pairwise(keys):
        m = (f >= f0) & (f <= f1)
        x = (f[m] - f0) / max(f1 - f0, 1)
        out[m] = v0 + (v1 - v0) * x * x * (3 - 2 * x)
    out[f > keys[-1][0]] = keys[-1][1]
    return out


def plan_clip(config: PhotoConfig, subject: int, true: str, disguised: str) -> PhotoPlan:
    """The same paradigm as ``unmask synth`` (neutral, felt emotion alone at the onset, disguise with an
    upper-face residue at the apex, offset, neutral), on this renderer's own timing (30 fps: longer phases)."""
    from unmask.synth.masked import PROTOTYPES, UPPER_FACE

    gain = float(_rng(config, 1, subject).uniform(0.85, 1.1))
    rng = _rng(config, 2, subject, EMOTIONS.index(true) * 6 + EMOTIONS.index(disguised))
    n0, rise, hold_n, trans, plateau, fall, tail = (int(b + rng.integers(-1, 2)) for b in (4, 7, 2, 8, 10, 8, 5))
    onset = n0 - 1 + rise
    hold = onset + hold_n
    plateau_start = hold + trans
    apex = plateau_start + plateau // 2
    plateau_end = plateau_start + plateau
    offset = plateau_end + fall
    n = offset + 1 + tail
    f = np.arange(n, dtype=np.float64)

    def full(emotion):
        return {au: v * gain * max(0.0, 1 + config.jitter * float(rng.standard_normal()))
                for au, v in PROTOTYPES[emotion].items()}

    true_full, disg_full = full(true), full(disguised)
    curves = {}
    for au, v in true_full.items():
        residue = config.leak * v * (1.0 if au in UPPER_FACE else config.lower_leak_ratio)
        top = config.onset_strength * v
        curves[au] = _smooth(f, [(n0 - 1, 0.0), (onset, top), (hold, top), (plateau_start, residue),
                                 (plateau_end, residue), (offset, 0.0)])
    level = _smooth(f, [(hold, 0.0), (plateau_start, 1.0), (plateau_end, 1.0), (offset, 0.0)])
    aus = [{au: round(float(max(curves[au][i] if au in curves else 0.0, disg_full.get(au, 0.0) * level[i])), 4)
            for au in AUS} for i in range(n)]
    ph = rng.uniform(0, 2 * math.pi, 4)
    amp = config.motion * np.array([0.015 * config.width, 0.012 * config.height, 3.0, 0.03])
    w = 2 * math.pi / n
    poses = [(float(amp[0] * math.sin(0.7 * w * i + ph[0])), float(amp[1] * math.sin(w * i + ph[1])),
              float(amp[2] * math.sin(0.9 * w * i + ph[2])), float(1 + amp[3] * math.sin(0.5 * w * i + ph[3])))
             for i in range(n)]
    gains = tuple(float(g) for g in rng.uniform(0.8, 1.15) * rng.uniform(0.94, 1.06, 3))
    return PhotoPlan(clip_name(subject, true, disguised), subject, true, disguised, onset, apex, offset, aus,
                     poses, gains, int(rng.integers(2**31)))


def render_clip(config: PhotoConfig, plan: PhotoPlan, rig: Rig) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Yield ``(frame RGB uint8 [H, W, 3], face box)`` per frame: expression, head pose, lighting, noise."""
    W, H = config.width, config.height
    centre = tuple(float(c) for c in rig.face.landmarks[:2].mean(0))
    rng = np.random.default_rng(plan.noise_seed)
    sigma = 2.0 * config.noise
    bx, by, bw, bh = rig.face.box
    for aus, (dx, dy, roll, scale) in zip(plan.aus, plan.poses):
        img = render_expression(rig, aus, config.strength)
        M = cv2.getRotationMatrix2D(centre, roll, scale)
        M[:, 2] += (dx, dy)
        img = cv2.warpAffine(img, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        img = img * np.asarray(plan.gains, np.float32)
        if sigma > 0:
            img += rng.standard_normal(img.shape, dtype=np.float32) * sigma
        cx, cy = M @ np.array([bx + bw / 2, by + bh / 2, 1.0])
        box = (int(round(cx - bw * scale / 2)), int(round(cy - bh * scale / 2)), int(round(bw * scale)),
               int(round(bh * scale)))
        yield np.clip(img + 0.5, 0, 255).astype(np.uint8), box


def write_mjpeg(frames: Iterable[np.ndarray], path: Path, fps: float, quality: int = 3) -> int:
    """Encode RGB frames as Motion JPEG in an AVI (PyAV); each frame is coded alone, so the same frames give
    the same file. Returns the number of frames written."""
    from fractions import Fraction

    import av

    n = 0
    with av.open(str(path), "w", format="avi") as container:
        rate = Fraction(fps).limit_denominator(1001)
        stream = container.add_stream("mjpeg", rate=rate)
        stream.pix_fmt = "yuvj420p"
        stream.options = {"qmin": str(quality), "qmax": str(quality)}  # a fixed quantiser, no rate control
        for img in frames:
            if n == 0:
                stream.width, stream.height = img.shape[1], img.shape[0]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = n
            container.mux(stream.encode(frame))
            n += 1
        container.mux(stream.encode())
    return n


@lru_cache(maxsize=8)
def _rig(path: str, frame, width: int, height: int) -> Rig:
    return build_rig(canonical_face(Source(Path(path), frame), width, height))


def make_clip(config: PhotoConfig, out: Path, subject: int, source: Source, true: str, disguised: str) -> Clip:
    """Render, encode and annotate one clip unless it is already complete; return its manifest ``Clip``."""
    from unmask.data.manifest import Clip
    from unmask.synth.masked import _complete, _union, _write_annotations

    rig = _rig(str(source.path), source.frame, config.width, config.height)
    plan = plan_clip(config, subject, true, disguised)
    video = out / "videos" / f"{plan.clip_id}.avi"
    ann = out / "annotations" / f"{plan.clip_id}.csv"
    boxes = []
    if _complete(video, ann, len(plan.aus)):
        from unmask.data.manifest import read_annotations

        got = read_annotations(ann)["boxes"]
        boxes = [got[i] for i in sorted(got)]
    else:
        def frames():
            for img, box in render_clip(config, plan, rig):
                boxes.append(box)
                yield img

        tmp = video.with_name(video.stem + ".part.avi")
        n = write_mjpeg(frames(), tmp, config.fps, config.quality)
        if n != len(plan.aus):
            raise RuntimeError(f"{plan.clip_id}: wrote {n} frames, planned {len(plan.aus)}")
        _write_annotations(ann, plan, boxes)
        os.replace(tmp, video)
    return Clip(plan.clip_id, subject_name(subject), video, {"true": true, "disguised": disguised}, plan.onset,
                plan.apex, plan.offset, face_box=_union(boxes), annotations=ann, congruent=true == disguised)


def generate_photo(out: str | Path, config: PhotoConfig, *, progress: bool = True) -> Path:
    """Write the photo-rendered set into ``out`` (``manifest.csv`` + tasks sidecar, ``photo.json``,
    ``videos/<clip>.avi``, ``annotations/<clip>.csv``) and return the manifest path. Rerunning with the same
    config resumes; a different config into a non-empty folder is refused."""
    from tqdm import tqdm

    from unmask.data.manifest import write_manifest

    config = config.validated()
    if not config.faces:
        raise UnmaskError("the photo renderer needs a folder of face photos (--faces DIR)")
    sources = find_sources(config.faces)
    if config.subjects > len(sources):
        raise UnmaskError(f"{config.subjects} subjects asked, but {config.faces} has only {len(sources)} "
                          f"source face(s): {', '.join(s.label for s in sources)}")
    sources = sources[: config.subjects or len(sources)]
    for s in sources:  # fail early, naming the source, if a face cannot be found
        _rig(str(s.path), s.frame, config.width, config.height)
    wanted = {**asdict(config), "faces": str(Path(config.faces).resolve()),
              "sources": {subject_name(i): s.label for i, s in enumerate(sources)}}
    out = claim_output(out, wanted, "photo.json", ("videos", "annotations"))
    jobs = [(i, t, d) for i in range(len(sources)) for t, d in config.pairs()]
    clips = []
    for i, t, d in tqdm(jobs, desc="photo", unit="clip", disable=not progress):
        clips.append(make_clip(config, out, i, sources[i], t, d))
    return write_manifest(clips, out / "manifest.csv", MFED_TASKS)


__all__ = [
    "AUS",
    "DEFAULT_SOURCES",
    "PhotoConfig",
    "Source",
    "build_rig",
    "canonical_face",
    "displacement",
    "find_sources",
    "generate_photo",
    "make_clip",
    "plan_clip",
    "render_clip",
    "render_expression",
    "write_mjpeg",
]
