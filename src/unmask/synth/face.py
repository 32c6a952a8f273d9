"""Procedural face renderer for the synthetic masked-expression set (see :mod:`unmask.synth.masked`).

A face is drawn with anti-aliased OpenCV primitives from two things:

- an :class:`Identity` (face shape, skin, hair, feature spacing, expressivity, background, lighting, noise),
  drawn once per subject from the subject's own RNG, so a subject looks the same in every clip;
- a dict of FACS action-unit intensities (``{"AU01": 0.4, ...}``; 0 = neutral, 1 = a full prototypical
  action, values up to ~1.5 are drawn sensibly) that move the features the way FACS describes them.

All feature geometry lives in a face-normalised frame (``u`` right, ``v`` down; the face ellipse spans
``[-1, 1]`` in both) and is mapped to pixels by one similarity transform, so head motion (translation,
roll, scale) moves every feature consistently. Colours are RGB.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: Action units the renderer understands, in annotation-column order.
AUS: tuple[str, ...] = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09",
                        "AU12", "AU15", "AU16", "AU20", "AU23", "AU25", "AU26")

_SHIFT = 4  # OpenCV sub-pixel bits: coordinates are drawn with 1/16 px precision
_HAIR = ((28, 24, 22), (70, 45, 30), (115, 75, 40), (190, 160, 105), (150, 65, 35), (150, 150, 150))


@dataclass(frozen=True)
class Identity:
    """Everything that makes one synthetic subject recognisable across clips."""

    cx: float; cy: float              # face centre, px (deliberately off-centre)
    hw: float; hh: float              # face half-width / half-height, px
    jaw_taper: float
    skin: tuple; lips: tuple; iris: tuple; hair: tuple; clothes: tuple
    hair_style: int                   # 0 short, 1 long, 2 receding, 3 fringe
    eye_x: float; eye_y: float; eye_w: float; eye_h: float
    brow_gap: float; brow_th: float; brow_arch: float
    nose_y: float; mouth_y: float; mouth_w: float; lip_u: float; lip_l: float
    expressivity: float               # AU gain of this subject
    bg_kind: int; bg_a: tuple; bg_b: tuple; bg_seed: int
    brightness: float; light_angle: float; light_strength: float
    noise_sigma: float


def _u(rng, a, b):
    return float(rng.uniform(a, b))


def _mix(c1, c2, a):
    a = min(max(float(a), 0.0), 1.0)
    return tuple(float(x) * (1 - a) + float(y) * a for x, y in zip(c1, c2))


def sample_identity(rng: np.random.Generator, width: int, height: int) -> Identity:
    """Draw a subject's identity (call once per subject, with that subject's RNG)."""
    hh = height * _u(rng, 0.27, 0.31)
    tone = _u(rng, 0, 1)
    skin = _mix((238, 204, 178), (112, 72, 50), tone)
    skin = tuple(min(255.0, max(0.0, c + _u(rng, -8, 8))) for c in skin)
    hair = _HAIR[int(rng.integers(len(_HAIR)))]
    return Identity(
        cx=width / 2 + _u(rng, -0.1, 0.1) * width, cy=height / 2 + _u(rng, 0.0, 0.06) * height,
        hw=hh * _u(rng, 0.72, 0.86), hh=hh, jaw_taper=_u(rng, 0.05, 0.22),
        skin=skin, lips=_mix(skin, (170, 60, 70), _u(rng, 0.35, 0.6)),
        iris=((70, 45, 25), (60, 100, 140), (80, 110, 70), (40, 30, 25))[int(rng.integers(4))],
        hair=hair, clothes=tuple(float(c) for c in rng.integers(30, 220, 3)),
        hair_style=int(rng.integers(4)),
        eye_x=_u(rng, 0.33, 0.40), eye_y=_u(rng, -0.17, -0.09), eye_w=_u(rng, 0.16, 0.19),
        eye_h=_u(rng, 0.075, 0.095), brow_gap=_u(rng, 0.15, 0.2), brow_th=_u(rng, 0.035, 0.06),
        brow_arch=_u(rng, 0.02, 0.06), nose_y=_u(rng, 0.2, 0.27), mouth_y=_u(rng, 0.5, 0.57),
        mouth_w=_u(rng, 0.26, 0.33), lip_u=_u(rng, 0.045, 0.07), lip_l=_u(rng, 0.055, 0.085),
        expressivity=_u(rng, 0.85, 1.1),
        bg_kind=int(rng.integers(3)), bg_a=tuple(float(c) for c in rng.integers(40, 230, 3)),
        bg_b=tuple(float(c) for c in rng.integers(40, 230, 3)), bg_seed=int(rng.integers(2**31)),
        brightness=_u(rng, 0.85, 1.1), light_angle=_u(rng, 0, 2 * math.pi), light_strength=_u(rng, 0.0, 0.25),
        noise_sigma=_u(rng, 1.5, 4.0),
    )


def render_background(ident: Identity, width: int, height: int) -> np.ndarray:
    """The subject's static backdrop (camera fixed): a gradient, soft blotches or soft stripes. [H, W, 3] uint8."""
    rng = np.random.default_rng(ident.bg_seed)
    a, b = np.array(ident.bg_a, np.float32), np.array(ident.bg_b, np.float32)
    if ident.bg_kind == 0:
        t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None] * np.ones((1, width, 1), np.float32)
    elif ident.bg_kind == 1:
        t = cv2.resize(rng.random((5, 7), dtype=np.float32), (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    else:
        period = _u(rng, 0.08, 0.2) * width
        t = (0.5 + 0.5 * np.sin(np.arange(width, dtype=np.float32) * 2 * np.pi / period))[None, :, None]
        t = t * np.ones((height, 1, 1), np.float32)
    return np.clip(a * (1 - t) + b * t, 0, 255).astype(np.uint8)


def lighting_map(ident: Identity, width: int, height: int) -> np.ndarray:
    """Multiplicative illumination: brightness times a linear gradient across the frame. [H, W, 1] float32."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    g = (math.cos(ident.light_angle) * (xs / width - 0.5) + math.sin(ident.light_angle) * (ys / height - 0.5))
    return (ident.brightness * (1 + ident.light_strength * 2 * g))[..., None].astype(np.float32)


class _Canvas:
    """Draws face-normalised geometry onto an image through one similarity transform."""

    def __init__(self, img, ident: Identity, pose):
        dx, dy, angle, scale = pose
        self.img = img
        t = math.radians(angle)
        c, s = math.cos(t), math.sin(t)
        # [2, 2] maps (u, v) to pixels: per-axis face size, then roll, then scale
        self.m = scale * np.array([[c * ident.hw, -s * ident.hh], [s * ident.hw, c * ident.hh]])
        self.t = np.array([ident.cx + dx, ident.cy + dy])
        self.unit = scale * ident.hh  # pixels per normalised unit (for line widths)

    def px(self, pts) -> np.ndarray:
        return np.asarray(pts, np.float64) @ self.m.T + self.t

    def _fix(self, pts):
        return [np.round(self.px(pts) * (1 << _SHIFT)).astype(np.int32)]

    def fill(self, pts, color):
        cv2.fillPoly(self.img, self._fix(pts), color, cv2.LINE_AA, _SHIFT)

    def line(self, pts, color, width=0.012, closed=False):
        th = max(1, int(round(width * self.unit)))
        cv2.polylines(self.img, self._fix(pts), closed, color, th, cv2.LINE_AA, _SHIFT)


def _ellipse(cx, cy, a, b, t0=0.0, t1=2 * math.pi, n=40):
    t = np.linspace(t0, t1, n)
    return np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], 1)


def _band(upper, lower):
    """Polygon between two polylines sampled left to right."""
    return np.concatenate([upper, lower[::-1]])


def _outline(ident: Identity, jaw: float, n=64):
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    s = np.sin(t)
    low = np.clip(s, 0, None)
    u = np.cos(t) * (1 - ident.jaw_taper * low ** 2)
    v = s * np.where(s > 0, 1 + jaw, 1.0)
    return np.stack([u, v], 1)


def face_box(ident: Identity, aus: dict, pose: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel box ``(x, y, w, h)`` of the face outline (forehead to chin, cheek to cheek), clipped to the frame."""
    cv = _Canvas(None, ident, pose)
    pts = cv.px(_outline(ident, 0.11 * min(aus.get("AU26", 0.0), 1.5)))
    x0, y0 = np.clip(pts.min(0), 0, [width - 1, height - 1])
    x1, y1 = np.clip(pts.max(0), 0, [width - 1, height - 1])
    return int(math.floor(x0)), int(math.floor(y0)), int(math.ceil(x1 - x0)) + 1, int(math.ceil(y1 - y0)) + 1


def render_face(img: np.ndarray, ident: Identity, aus: dict, pose: Sequence[float] = (0.0, 0.0, 0.0, 1.0)) -> None:
    """Draw the subject with the given AU intensities onto ``img`` ([H, W, 3] uint8 RGB) in place.

    ``pose`` is ``(dx, dy, roll_degrees, scale)`` relative to the subject's resting head position.
    """
    a = {k: min(max(float(aus.get(k, 0.0)), 0.0), 1.5) for k in AUS}
    cv = _Canvas(img, ident, pose)
    skin = ident.skin
    dark = _mix(skin, (40, 20, 15), 0.55)
    def crease(k: float) -> tuple:  # a wrinkle as deep as k (0..1)
        return _mix(skin, (60, 30, 20), k)

    jaw = 0.11 * a["AU26"]

    # -- behind the face: hair volume, neck, shoulders, ears
    hair = ident.hair
    if ident.hair_style == 1:
        cv.fill(np.concatenate([_ellipse(0, -0.1, 1.22, 1.15, math.pi, 2 * math.pi), [[1.25, 1.35], [-1.25, 1.35]]]), hair)
    elif ident.hair_style != 2:
        cv.fill(_ellipse(0, -0.12, 1.12, 1.02), hair)
    cv.fill([[-0.42, 0.6], [0.42, 0.6], [0.5, 1.7], [-0.5, 1.7]], _mix(skin, (0, 0, 0), 0.25))
    cv.fill(_ellipse(0, 2.35, 2.4, 0.9), ident.clothes)
    for s in (-1, 1):
        cv.fill(_ellipse(s * 0.97, -0.02, 0.12, 0.2), _mix(skin, (0, 0, 0), 0.08))

    # -- face and cheeks
    outline = _outline(ident, jaw)
    cv.fill(outline, skin)
    cv.line(outline, _mix(skin, (0, 0, 0), 0.3), 0.012, closed=True)
    for s in (-1, 1):
        cy = 0.22 - 0.07 * a["AU06"] - 0.04 * a["AU12"]
        cv.fill(_ellipse(s * 0.5, cy, 0.17, 0.11 * (1 + 0.25 * a["AU06"])),
                _mix(skin, (205, 95, 95), 0.12 + 0.18 * a["AU06"]))

    # -- eyes: sclera, iris, then lid bands in skin colour that hide what lies outside the opening
    ey, ew = ident.eye_y, ident.eye_w
    up_h = ident.eye_h * (1 + 1.0 * a["AU05"] - 0.4 * a["AU07"] - 0.25 * a["AU06"] - 0.15 * a["AU04"])
    lo_h = ident.eye_h * 0.7 * max(0.08, 1 - 0.6 * a["AU07"] - 0.5 * a["AU06"] + 0.25 * a["AU05"])
    t = np.linspace(-1, 1, 21)
    bulge = (1 - t ** 2) ** 0.8
    r_iris = ident.eye_h * 0.95
    for s in (-1, 1):
        ex = s * ident.eye_x
        xs = ex + s * t * ew
        upper = np.stack([xs, ey - up_h * bulge], 1)
        lower = np.stack([xs, ey + lo_h * bulge], 1)
        cv.fill(_band(upper, lower), (242, 240, 236))
        asp = ident.hh / ident.hw  # round in pixels
        cv.fill(_ellipse(ex, ey + 0.004, r_iris * asp, r_iris), ident.iris)
        cv.fill(_ellipse(ex, ey + 0.004, 0.42 * r_iris * asp, 0.42 * r_iris), (15, 12, 12))
        cv.fill(_ellipse(ex + 0.015 * asp, ey - 0.02, 0.012 * asp, 0.012, n=12), (250, 250, 250))
        cv.fill(_band(np.stack([xs, upper[:, 1] - 0.075], 1), upper), _mix(skin, (0, 0, 0), 0.06))
        cv.fill(_band(lower, np.stack([xs, lower[:, 1] + 0.11], 1)), skin)
        cv.line(np.stack([xs, upper[:, 1] - (0.035 + 0.01 * a["AU05"]) * bulge], 1), crease(0.35 - 0.25 * min(a["AU05"], 1)), 0.008)
        cv.line(upper, (30, 22, 20), 0.02)
        cv.line(lower, _mix(skin, (60, 30, 20), 0.5), 0.008)
        if a["AU06"] > 0.03:  # crow's feet fan out from the outer corner
            ox = ex + s * (ew + 0.04)
            for dv in (-0.05, 0.0, 0.05):
                cv.line([[ox, ey + dv * 0.6], [ox + s * 0.08, ey + dv * 1.6]], crease(0.6 * a["AU06"]), 0.009)
        if a["AU07"] > 0.03:  # tensed lower lid bulge
            cv.line(np.stack([xs * 0.9 + ex * 0.1, lower[:, 1] + 0.03], 1), crease(0.45 * a["AU07"]), 0.008)

    # -- forehead: horizontal wrinkles from brow raising (AU1 centre, AU2 sides), glabellar furrows from AU4
    brow_y = ey - ident.brow_gap
    if a["AU01"] + a["AU02"] > 0.03:
        for k in range(3):
            v = brow_y - 0.1 - 0.06 * k
            half = 0.15 + 0.2 * a["AU02"] / (a["AU01"] + a["AU02"] + 1e-6)
            xs = np.linspace(-half - 0.1, half + 0.1, 15)
            cv.line(np.stack([xs, v + 0.03 * (xs / (half + 0.1)) ** 2], 1), crease(0.55 * min(1, a["AU01"] + a["AU02"]) ** 0.8), 0.009)
    if a["AU04"] + 0.5 * a["AU09"] > 0.03:
        k = min(1, a["AU04"] + 0.5 * a["AU09"])
        for s in (-1, 1):
            cv.line([[s * 0.045, brow_y - 0.02], [s * 0.035, brow_y + 0.09]], crease(0.7 * k), 0.011)

    # -- brows: tapered bands; AU1 lifts the inner end, AU2 the outer, AU4 (and AU9) lowers and knits them
    tb = np.linspace(0, 1, 12)
    for s in (-1, 1):
        inner, outer = 0.1 - 0.05 * a["AU04"], ident.eye_x + ew + 0.05
        u = s * (inner + tb * (outer - inner))
        v = (brow_y - ident.brow_arch * np.sin(np.pi * tb * 0.85)
             - 0.11 * a["AU01"] * (1 - tb) ** 1.5 - 0.1 * a["AU02"] * tb ** 1.3
             + 0.07 * a["AU04"] * (1 - 0.5 * tb) + 0.035 * a["AU09"] * (1 - tb))
        th = ident.brow_th * (1.1 - 0.55 * tb)
        cv.fill(_band(np.stack([u, v - th / 2], 1), np.stack([u, v + th / 2], 1)), _mix(hair, (20, 14, 10), 0.7))

    # -- nose: AU9 wrinkles the bridge and lifts the nostrils
    ny = ident.nose_y - 0.035 * a["AU09"]
    if a["AU09"] > 0.03:
        for k in range(3):
            v = ey + 0.03 + 0.04 * k
            cv.line([[-0.07, v], [0, v - 0.01], [0.07, v]], crease(0.65 * a["AU09"]), 0.009)
    cv.line([[0.04, ey + 0.02], [0.07, ny - 0.08]], _mix(skin, (0, 0, 0), 0.15), 0.01)
    cv.line(_ellipse(0, ny - 0.03, 0.16 * (1 + 0.2 * a["AU09"]), 0.05, 0.15 * math.pi, 0.85 * math.pi, 15), dark, 0.013)
    for s in (-1, 1):
        cv.fill(_ellipse(s * 0.055, ny, 0.03 * (1 + 0.3 * a["AU09"]), 0.015), _mix(skin, (30, 10, 10), 0.75))

    # -- nasolabial folds: deepen with AU6/AU12 (smile), AU9 (sneer) and AU20 (stretch)
    mw = ident.mouth_w * (1 + 0.2 * a["AU12"] + 0.3 * a["AU20"] - 0.15 * a["AU23"] - 0.08 * a["AU26"])
    corner = -0.09 * a["AU12"] + 0.075 * a["AU15"] + 0.025 * a["AU20"] + 0.02 * a["AU16"]
    my = ident.mouth_y - 0.02 * a["AU09"]
    fold = min(1, 0.15 + 0.5 * a["AU12"] + 0.35 * a["AU06"] + 0.55 * a["AU09"] + 0.3 * a["AU20"])
    for s in (-1, 1):
        p0 = np.array([s * 0.16, ny - 0.04])
        p2 = np.array([s * (mw + 0.07), my + corner + 0.1 + 0.05 * a["AU26"]])
        p1 = np.array([s * (0.3 + 0.06 * a["AU12"]), (p0[1] + p2[1]) / 2])
        q = np.linspace(0, 1, 12)[:, None]
        cv.line((1 - q) ** 2 * p0 + 2 * q * (1 - q) * p1 + q ** 2 * p2, crease(0.6 * fold), 0.011)

    # -- mouth: corners (AU12 up/out, AU15 down, AU20 out, AU23 in), lips part (AU25), jaw drops (AU26)
    t = np.linspace(-1, 1, 25)
    x = t * mw
    env = np.sqrt(1 - t ** 2)
    opening = 0.012 * a["AU25"] + 0.14 * a["AU26"] + 0.035 * a["AU16"]
    y_iu = my + corner * t ** 2 - 0.025 * a["AU09"] * (1 - t ** 2)
    y_il = my + corner * t ** 2 + opening * (1 - t ** 2) ** 0.7
    thin = 1 - 0.55 * a["AU23"] - 0.25 * a["AU12"] - 0.3 * a["AU20"]
    y_ou = y_iu - ident.lip_u * max(thin, 0.25) * env * (1 - 0.25 * np.exp(-(t / 0.12) ** 2))
    y_ol = y_il + ident.lip_l * max(thin + 0.2 * a["AU16"], 0.25) * env
    cv.fill(_band(np.stack([x, y_ou], 1), np.stack([x, y_ol], 1)), ident.lips)
    if opening > 0.006:
        cv.fill(_band(np.stack([x, y_iu], 1), np.stack([x, y_il], 1)), (70, 25, 30))
        m = np.abs(t) < 0.8
        teeth = np.minimum(y_iu + 0.035 * env, y_il)
        cv.fill(_band(np.stack([x[m], y_iu[m]], 1), np.stack([x[m], teeth[m]], 1)), (236, 232, 220))
        if a["AU16"] > 0.05:
            low = np.maximum(y_il - 0.025 * a["AU16"] * env, y_iu)
            cv.fill(_band(np.stack([x[m], low[m]], 1), np.stack([x[m], y_il[m]], 1)), (225, 220, 205))
        cv.line(np.stack([x, y_il], 1), _mix(ident.lips, (0, 0, 0), 0.35), 0.008)
    cv.line(np.stack([x, y_iu], 1), _mix(ident.lips, (0, 0, 0), 0.45), 0.011)
    if a["AU15"] + a["AU16"] > 0.03:  # chin boss pushed up / lower-lip depressed: a crease under the lip
        yc = my + 0.18 + opening
        cv.line(_ellipse(0, yc, 0.12, 0.03, math.pi * 1.15, math.pi * 1.85, 12), crease(0.4 * min(1, a["AU15"] + a["AU16"])), 0.009)

    # -- hair in front: a cap over the top of the head down to the hairline (receding for style 2, a fringe for 3)
    hl = (-0.74, -0.74, -0.9, -0.64)[ident.hair_style]
    top = _ellipse(0, 0, 1.04, 1.04, math.pi * 1.02, math.pi * 1.98, 30)
    xs = np.linspace(0.9, -0.9, 15)
    line = np.stack([xs, hl + (0.18 if ident.hair_style != 2 else 0.45) * (np.abs(xs) / 0.9) ** 3], 1)
    if ident.hair_style == 3:
        line[1::2, 1] += 0.06
    cv.fill(np.concatenate([top, line]), hair)


def render_frames(ident: Identity, frames: Iterable[dict], poses: Iterable[Sequence[float]], width: int, height: int, noise_seed: int, noise: float = 1.0) -> Iterator[np.ndarray]:
    """Yield one uint8 RGB frame ``[H, W, 3]`` per (AU intensities, pose) pair: the identity's background,
    face and lighting, plus sensor noise (``noise`` x the identity's level, seeded by ``noise_seed``)."""
    bg, light = render_background(ident, width, height), lighting_map(ident, width, height)
    rng = np.random.default_rng(noise_seed)
    sigma = ident.noise_sigma * noise
    for aus, pose in zip(frames, poses):
        img = bg.copy()
        render_face(img, ident, aus, pose)
        x = img.astype(np.float32) * light
        if sigma > 0:
            x += rng.standard_normal(x.shape, dtype=np.float32) * sigma
        yield np.clip(x + 0.5, 0, 255).astype(np.uint8)
