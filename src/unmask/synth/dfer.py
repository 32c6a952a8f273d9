"""A synthetic in-the-wild DFER set with known ground truth (``unmask synth OUT --kind dfer``), in DFEW's layout.

What makes in-the-wild DFER hard, each a knob of :class:`DferSynthConfig` with its ground truth in the metadata:

* **7 classes with neutral** (DFEW's: happy, sad, neutral, angry, surprise, disgust, fear), EMFACS prototypes of
  the masked-expression generator (:data:`unmask.synth.masked.PROTOTYPES`); a neutral clip has no expression event.
* **Temporal dilution**: the expression (rise, hold, fall) occupies only ``dilution`` (a range) of a clip whose
  length varies (``min_frames`` .. ``max_frames``); the rest is the person's resting face.
* **A resting-face bias (global context)**: every clip's person carries a constant resting expression, a random
  one of the six prototypes at up to ``rest_bias`` of full intensity ("a face that looks sad at rest"). It is
  the same in every frame, so it is *context*, not the emotion: what distinguishes the classes is the *change*
  from the resting face. This is the part a per-frame average cannot undo: the average of a clip is the resting
  face plus a diluted expression, and a strong resting face outweighs a short, diluted event. A model of the
  dynamics (what changes against the clip's own context) can recover the label; the fair-test claim in the docs
  is measured, not assumed.
* **Emotion-irrelevant facial actions**: speech-like mouth cycles (AU25/AU26 at 3-5 Hz over a random span),
  blink-like lid closures (AU07 spikes; the renderer has no AU45), head turns (slow yaw-like sway and roll).
* **Global context**: the person's background, a lighting change across the clip, camera shake, and a partial
  occluder (a hand-like patch crossing the lower or upper face) in some clips.

Layout (DFEW's, so ``unmask import dfew OUT`` reads it; ``OUT/manifest.csv`` is that import plus the face boxes)::

    OUT/synth.json                                   the resolved configuration
    OUT/Clip/original/00001.mp4                      one video per clip
    OUT/EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv   video_name,label (1-7)
    OUT/annotations/00001.csv                        per frame: face box, rendered AU intensities, event flags
    OUT/truth.csv                                    per clip: person, label, length, event span, resting face, knobs
    OUT/manifest.csv (+ .tasks.yaml)                 the dfew import with the annotation files attached

Persons are dealt to folds (person p tests in fold ``p % folds + 1``), so no person is in both the training and
the test part of a fold. Deterministic: every clip draws from an RNG seeded by ``(seed, person, clip)``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unmask.data.sources.dfer import DFEW_LABELS
from unmask.errors import UnmaskError
from unmask.io import claim_output

if TYPE_CHECKING:
    from unmask.synth.face import Identity

#: DFEW label -> the masked-expression generator's prototype name (neutral: none).
PROTOTYPE_OF = {"happy": "happiness", "sad": "sadness", "angry": "anger", "surprise": "surprise",
                "disgust": "disgust", "fear": "fear", "neutral": None}


@dataclass(frozen=True)
class DferSynthConfig:
    persons: int = 10
    clips_per_class: int = 4  # per person
    folds: int = 5
    seed: int = 0
    width: int = 160
    height: int = 120
    fps: float = 25.0
    min_frames: int = 24
    max_frames: int = 48
    dilution: tuple[float, float] = (0.25, 0.45)  # fraction of the clip the expression event occupies
    intensity: float = 0.9  # the event's peak, x full prototype intensity
    rest_bias: float = 0.6  # resting-face expression, up to this x full intensity (0: none)
    speech: float = 0.6  # probability of a speech span; its mouth cycles reach 0.5
    blinks: float = 0.4  # lid closures per second
    head_turn: float = 1.0  # head sway amplitude multiplier
    light_change: float = 0.25  # brightness ramp across the clip, up to +- this
    shake: float = 1.0  # camera shake amplitude multiplier (pixels)
    occluder: float = 0.3  # probability of a partial occluder
    noise: float = 1.0
    crf: int = 18

    def validated(self) -> DferSynthConfig:
        problems = []
        if self.persons < self.folds or self.folds < 2:
            problems.append(f"need folds >= 2 and persons >= folds (got persons={self.persons}, folds={self.folds})")
        if self.clips_per_class < 1:
            problems.append(f"clips_per_class must be at least 1 (got {self.clips_per_class})")
        if not 8 <= self.min_frames <= self.max_frames:
            problems.append(f"need 8 <= min_frames <= max_frames (got {self.min_frames}, {self.max_frames})")
        lo, hi = self.dilution
        if not 0 < lo <= hi <= 1:
            problems.append(f"dilution must be a range within (0, 1] (got {self.dilution})")
        if self.width < 64 or self.height < 48 or self.width % 2 or self.height % 2:
            problems.append(f"size must be even and at least 64x48 (got {self.width}x{self.height})")
        for name in ("intensity", "rest_bias", "speech", "blinks", "head_turn", "light_change", "shake", "occluder",
                     "noise"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative (got {getattr(self, name)})")
        if problems:
            raise UnmaskError("invalid dfer synth configuration", problems)
        return self


@dataclass(frozen=True)
class DferPlan:
    number: int  # DFEW-style clip number (1-based)
    person: int
    label: str
    n: int
    event: tuple[int, int]  # first and last frame of the expression event (-1, -1: neutral)
    rest: str  # resting-face prototype
    rest_level: float
    speech: tuple[int, int]  # (-1, -1): none
    occluder: tuple[int, int, int]  # (start, end, 0 lower face | 1 upper face); start -1: none
    aus: list  # per frame {AU: intensity}
    poses: list  # per frame (dx, dy, roll, scale)
    light: list  # per frame brightness factor
    noise_seed: int


def _smooth(x):
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def plan_dfer_clip(cfg: DferSynthConfig, number: int, person: int, label: str, ident: Identity) -> DferPlan:
    from unmask.synth.face import AUS
    from unmask.synth.masked import PROTOTYPES

    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 7, person, number]))
    n = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    f = np.arange(n, dtype=np.float64)
    gain = ident.expressivity
    level = {au: np.zeros(n) for au in AUS}

    rest = str(rng.choice(sorted(PROTOTYPES)))
    rest_level = float(rng.uniform(0, cfg.rest_bias))
    for au, v in PROTOTYPES[rest].items():
        level[au] += rest_level * v * gain

    event = (-1, -1)
    proto = PROTOTYPE_OF[label]
    if proto is not None:
        span = max(4, int(round(rng.uniform(*cfg.dilution) * n)))
        start = int(rng.integers(0, n - span + 1))
        ramp = max(2, span // 3)
        x = f - start
        shape = np.where(x < ramp, _smooth(x / ramp), np.where(x > span - 1 - ramp, _smooth((span - 1 - x) / ramp), 1.0))
        shape[(x < 0) | (x > span - 1)] = 0.0
        peak = cfg.intensity * float(rng.uniform(0.85, 1.15))
        for au, v in PROTOTYPES[proto].items():
            level[au] = np.maximum(level[au], peak * v * gain * shape)  # a muscle shows the stronger drive
        event = (start, start + span - 1)

    speech = (-1, -1)
    if rng.random() < cfg.speech:
        length = int(rng.integers(n // 3, n + 1))
        s0 = int(rng.integers(0, n - length + 1))
        hz = rng.uniform(3, 5)
        cycle = 0.5 * (1 - np.cos(2 * math.pi * hz * (f - s0) / cfg.fps))
        on = (f >= s0) & (f < s0 + length)
        level["AU25"] = np.maximum(level["AU25"], np.where(on, 0.5 * cycle + 0.2, 0))
        level["AU26"] = np.maximum(level["AU26"], np.where(on, 0.45 * cycle, 0))
        speech = (s0, s0 + length - 1)
    for _ in range(rng.poisson(cfg.blinks * n / cfg.fps)):
        b = int(rng.integers(0, n))
        for k, v in ((b - 1, 0.6), (b, 1.3), (b + 1, 0.6)):
            if 0 <= k < n:
                level["AU07"][k] = max(level["AU07"][k], v)

    ph = rng.uniform(0, 2 * math.pi, 3)
    turn = cfg.head_turn * rng.uniform(0.5, 1.5)
    w = 2 * math.pi / n * rng.uniform(0.5, 1.5)
    shake = cfg.shake * rng.standard_normal((n, 2))
    poses = [(float(0.03 * cfg.width * turn * math.sin(w * i + ph[0]) + shake[i, 0]),
              float(0.01 * cfg.height * math.sin(1.7 * w * i + ph[1]) + shake[i, 1]),
              float(4.0 * turn * math.sin(0.8 * w * i + ph[2])), 1.0) for i in range(n)]
    light_amp = rng.uniform(-cfg.light_change, cfg.light_change)
    light = [float(1 + light_amp * (i / max(n - 1, 1) - 0.5) * 2) for i in range(n)]
    occ = (-1, -1, 0)
    if rng.random() < cfg.occluder:
        length = int(rng.integers(n // 4, n // 2 + 1))
        o0 = int(rng.integers(0, n - length + 1))
        occ = (o0, o0 + length - 1, int(rng.integers(2)))
    aus = [{au: round(float(level[au][i]), 4) for au in AUS} for i in range(n)]
    return DferPlan(number, person, label, n, event, rest, round(rest_level, 4), speech, occ, aus, poses, light,
                    int(rng.integers(2**31)))


def render_dfer_clip(cfg: DferSynthConfig, plan: DferPlan, ident: Identity) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Yield ``(RGB uint8 [H, W, 3], face box)`` per frame."""
    import cv2

    from unmask.synth.face import face_box, lighting_map, render_background, render_face

    W, H = cfg.width, cfg.height
    bg, light = render_background(ident, W, H), lighting_map(ident, W, H)
    rng = np.random.default_rng(plan.noise_seed)
    sigma = ident.noise_sigma * cfg.noise
    o0, o1, upper = plan.occluder
    for i, (aus, pose) in enumerate(zip(plan.aus, plan.poses)):
        img = bg.copy()
        render_face(img, ident, aus, pose)
        box = face_box(ident, aus, pose, W, H)
        if o0 <= i <= o1:  # a hand-like patch sliding across a third of the face
            x, y, w, h = box
            t = (i - o0) / max(o1 - o0, 1)
            cx = int(x + w * (0.1 + 0.8 * t))
            cy = int(y + h * (0.3 if upper else 0.78))
            cv2.ellipse(img, (cx, cy), (max(2, w // 5), max(2, h // 7)), 20, 0, 360,
                        tuple(int(c * 0.8) for c in ident.skin), -1, cv2.LINE_AA)
        out = img.astype(np.float32) * light * plan.light[i]
        if sigma > 0:
            out += rng.standard_normal(out.shape, dtype=np.float32) * sigma
        yield np.clip(out + 0.5, 0, 255).astype(np.uint8), box


ANNOTATION_HEADER = ("frame", "x", "y", "w", "h")


def make_dfer_clip(cfg: DferSynthConfig, out: Path, number: int, person: int, label: str) -> dict:
    from unmask.data.video import write_video
    from unmask.synth.face import AUS, sample_identity
    from unmask.synth.masked import subject_rng

    ident = sample_identity(subject_rng(cfg, person), cfg.width, cfg.height)  # type: ignore[arg-type]
    plan = plan_dfer_clip(cfg, number, person, label, ident)
    name = f"{number:05d}"
    video = out / "Clip" / "original" / f"{name}.mp4"
    ann = out / "annotations" / f"{name}.csv"
    boxes = []

    def frames():
        for img, box in render_dfer_clip(cfg, plan, ident):
            boxes.append(box)
            yield img

    if not (video.is_file() and ann.is_file()):
        tmp = video.with_name(name + ".part.mp4")
        write_video(frames(), tmp, cfg.fps, cfg.crf)
        with open(ann, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(ANNOTATION_HEADER + AUS + ("event", "speech", "occluded"))
            for i, (box, aus) in enumerate(zip(boxes, plan.aus)):
                flags = [int(plan.event[0] <= i <= plan.event[1]), int(plan.speech[0] <= i <= plan.speech[1]),
                         int(plan.occluder[0] <= i <= plan.occluder[1])]
                w.writerow([i, *box, *(f"{aus[a]:.4f}" for a in AUS), *flags])
        os.replace(tmp, video)
    return {"video_name": number, "person": f"p{person + 1:02d}", "fold": person % cfg.folds + 1, "label": label,
            "frames": plan.n, "event_start": plan.event[0], "event_end": plan.event[1], "rest": plan.rest,
            "rest_level": plan.rest_level, "speech_start": plan.speech[0], "speech_end": plan.speech[1],
            "occluder_start": plan.occluder[0], "occluder_end": plan.occluder[1]}


def generate_dfer(out: str | Path, cfg: DferSynthConfig | None = None, *, workers: int = 1,
                  progress: bool = True) -> Path:
    """Write the set into ``out`` (new, empty, or the same configuration to resume); returns the manifest."""
    from tqdm import tqdm

    from unmask.data.manifest import write_manifest
    from unmask.data.sources.dfer import DFER7_TASK, import_dfew

    cfg = (cfg or DferSynthConfig()).validated()
    out = claim_output(out, {"kind": "dfer", **asdict(cfg)}, "synth.json", ("Clip/original", "annotations"))
    jobs, number = [], 0
    for person in range(cfg.persons):
        for label in DFEW_LABELS:
            for _ in range(cfg.clips_per_class):
                number += 1
                jobs.append((number, person, label))
    bar = tqdm(total=len(jobs), desc="synth dfer", unit="clip", disable=not progress)
    rows = []
    if workers == 1:
        for job in jobs:
            rows.append(make_dfer_clip(cfg, out, *job))
            bar.update()
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for row in pool.map(make_dfer_clip, *zip(*[(cfg, out, *j) for j in jobs])):
                rows.append(row)
                bar.update()
    bar.close()
    _write_splits(out, cfg, rows)
    with open(out / "truth.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    result = import_dfew(out)  # the adapter reads the set as it would read DFEW
    clips = [replace(c, annotations=out / "annotations" / f"{c.clip_id}.csv") for c in result.clips]
    return write_manifest(clips, out / "manifest.csv", (DFER7_TASK,))


def _write_splits(out: Path, cfg: DferSynthConfig, rows: list[dict]) -> None:
    base = out / "EmoLabel_DataSplit"
    for part in ("train", "test"):
        (base / f"{part}(single-labeled)").mkdir(parents=True, exist_ok=True)
    for k in range(1, cfg.folds + 1):
        for part, in_test in (("test", True), ("train", False)):
            with open(base / f"{part}(single-labeled)" / f"set_{k}.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["video_name", "label"])
                for r in rows:
                    if (r["fold"] == k) == in_test:
                        w.writerow([r["video_name"], DFEW_LABELS.index(r["label"]) + 1])
