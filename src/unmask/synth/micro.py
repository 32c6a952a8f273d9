"""A synthetic micro-expression set with known ground truth (``unmask synth OUT --kind micro``).

Why: MEDN's premise is that two micro-expressions can share their action units yet carry different
emotions, so a model that reads only the explicit motion (onset-to-apex flow, AUs) confuses them and one that
reads the implicit, temporal information does not. This generator makes that premise exact and measurable.

Each clip is one brief (``duration``, 0.2-0.5 s by default), low-intensity (``intensity``, 0.4 of a full
action by default) AU movement from neutral, filmed at a high frame rate (100 fps), with onset, apex and
offset frames, drawn by the same AU-driven face renderer as the masked-expression set
(:mod:`unmask.synth.face`). Four classes:

===============  ==================  ======================================================================
class            AUs                 onset -> apex dynamics
===============  ==================  ======================================================================
``happiness``    12 (+6 sometimes)   *fast*: ease-out, most of the movement in the first part of the rise
``repression``   12 (+6 sometimes)   *slow*: ease-in, the movement gathers just before the apex
``surprise``     1+2 (+5 sometimes)  either profile
``disgust``      4+9 (+7 sometimes)  either profile
===============  ==================  ======================================================================

``happiness`` and ``repression`` are the **ambiguous pair**: the same AU set (the optional AU6 is drawn
independently of the class), the same apex intensity distribution and the same durations, so the onset and
apex frames, the onset-to-apex flow and the AU labels carry no information about which of the two a clip is.
Only the frames between onset and apex (the implicit, temporal cue) separate them. The other two classes
differ in their AUs (the explicit cue). ``ambiguous`` is the share of clips drawn from the pair.

Written: ``manifest.csv`` (tasks ``emotion`` and ``aus``, a multi-label task over :data:`AU_LABELS`),
``synth.json`` (the config), ``clips.csv`` (per clip: class, AUs, dynamics, ambiguous flag, peak intensity,
duration in frames and seconds, onset/apex/offset), ``videos/<clip>.mp4`` and ``annotations/<clip>.csv``
(per frame: face box and rendered AU intensities). Same seed, same data.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from unmask.errors import UnmaskError
from unmask.io import claim_output
from unmask.tasks import Task

CLASSES = ("happiness", "repression", "surprise", "disgust")
AMBIGUOUS = ("happiness", "repression")
#: class -> (AUs always active, AUs active in about half of the clips)
CLASS_AUS = {"happiness": (("AU12",), ("AU06",)), "repression": (("AU12",), ("AU06",)),
             "surprise": (("AU01", "AU02"), ("AU05",)), "disgust": (("AU04", "AU09"), ("AU07",))}
#: class -> onset dynamics; None: drawn at random per clip (not a cue for that class)
DYNAMICS = {"happiness": "fast", "repression": "slow", "surprise": None, "disgust": None}
AU_LABELS = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU12")
PROFILE_POWER = {"fast": 0.4, "slow": 2.5}  # rise(x) = x ** p over onset -> apex, x in [0, 1]


def micro_tasks() -> tuple[Task, ...]:
    from unmask.data.sources._micro import au_task

    return (Task("emotion", "single", CLASSES, title="emotion"),
            au_task(tuple(int(a[2:]) for a in AU_LABELS)))


@dataclass(frozen=True)
class MicroConfig:
    """Every knob of the micro generator; saved as ``synth.json``."""

    subjects: int = 6
    clips: int = 16                  # clips per subject
    seed: int = 0
    width: int = 192
    height: int = 160
    fps: float = 100.0
    intensity: float = 0.4           # apex intensity, x a full action (before subject gain and jitter)
    min_duration: float = 0.2        # onset -> offset, seconds
    max_duration: float = 0.5
    apex_at: float = 0.4             # apex position within onset -> offset (share of the duration)
    ambiguous: float = 0.5           # share of the clips drawn from the ambiguous pair
    jitter: float = 0.1              # per-clip relative std of the apex intensity
    motion: float = 0.3              # head-motion multiplier (0: still)
    noise: float = 1.0               # sensor-noise multiplier
    crf: int = 12
    kind: str = "micro"

    def validated(self) -> MicroConfig:
        p = []
        if self.subjects < 2 or self.clips < 4:
            p.append(f"need at least 2 subjects and 4 clips per subject (got {self.subjects}, {self.clips})")
        if not 0 < self.intensity <= 1.5:
            p.append(f"intensity must be within (0, 1.5] (got {self.intensity})")
        if not 0 < self.min_duration <= self.max_duration <= 2:
            p.append(f"durations must satisfy 0 < min <= max <= 2 s (got {self.min_duration}, {self.max_duration})")
        if not 0 <= self.ambiguous <= 1:
            p.append(f"ambiguous must be within [0, 1] (got {self.ambiguous})")
        if not 0.15 <= self.apex_at <= 0.85:
            p.append(f"apex_at must be within [0.15, 0.85] (got {self.apex_at})")
        if not 10 <= self.fps <= 400:
            p.append(f"fps must be within [10, 400] (got {self.fps})")
        if self.width < 64 or self.height < 48 or self.width % 2 or self.height % 2:
            p.append(f"size must be even and at least 64x48 (got {self.width}x{self.height})")
        if min(self.jitter, self.motion, self.noise) < 0:
            p.append("jitter, motion and noise must not be negative")
        if round(self.min_duration * self.fps) < 6:
            p.append(f"min_duration x fps must give at least 6 frames (got {self.min_duration * self.fps:.1f})")
        if p:
            raise UnmaskError("invalid micro synth configuration", p)
        return self

    def classes_per_subject(self) -> list[str]:
        """The class of each of a subject's clips: the pair shares ``ambiguous`` of them, alternating."""
        n_amb = int(round(self.ambiguous * self.clips))
        out = [AMBIGUOUS[k % 2] for k in range(n_amb)]
        out += [("surprise", "disgust")[k % 2] for k in range(self.clips - n_amb)]
        return out


@dataclass(frozen=True)
class MicroPlan:
    clip_id: str
    subject: int
    emotion: str
    aus: tuple[str, ...]
    dynamics: str
    peak: float
    onset: int
    apex: int
    offset: int
    frames: list  # per frame AU intensities
    poses: list
    noise_seed: int


def plan_micro(config: MicroConfig, subject: int, k: int, emotion: str, gain: float = 1.0) -> MicroPlan:
    """Timeline and AU trajectories of clip ``k`` of ``subject`` (no rendering)."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 7, subject, k]))
    always, sometimes = CLASS_AUS[emotion]
    aus = tuple(sorted(always + tuple(a for a in sometimes if rng.random() < 0.5)))
    dynamics = DYNAMICS[emotion] or ("fast", "slow")[int(rng.integers(2))]
    duration = int(round(rng.uniform(config.min_duration, config.max_duration) * config.fps))
    lead, tail = int(rng.integers(4, 10)), int(rng.integers(4, 10))
    onset = lead
    apex = onset + max(3, int(round(config.apex_at * duration)))
    offset = onset + duration
    n = offset + 1 + tail
    peak = config.intensity * gain * max(0.2, 1 + config.jitter * float(rng.standard_normal()))
    weights = {a: (1.0 if a in always else float(rng.uniform(0.6, 1.0))) for a in aus}
    p = PROFILE_POWER[dynamics]
    frames = []
    for i in range(n):
        if i <= onset or i >= offset:
            level = 0.0
        elif i <= apex:
            level = ((i - onset) / (apex - onset)) ** p
        else:  # release: smooth fall to neutral, the same for every class
            x = (i - apex) / (offset - apex)
            level = 1 - x * x * (3 - 2 * x)
        frames.append({a: round(peak * w * level, 4) for a, w in weights.items()})
    ph = rng.uniform(0, 2 * math.pi, 3)
    amp = config.motion * np.array([0.01 * config.width, 0.008 * config.height, 1.0])
    w = 2 * math.pi / 150.0  # slow sway: about 1.5 s per cycle at 100 fps
    poses = [(float(amp[0] * math.sin(w * i + ph[0])), float(amp[1] * math.sin(1.3 * w * i + ph[1])),
              float(amp[2] * math.sin(0.8 * w * i + ph[2])), 1.0) for i in range(n)]
    return MicroPlan(f"s{subject + 1:02d}_{k:02d}_{emotion}", subject, emotion, aus, dynamics, round(peak, 4),
                     onset, apex, offset, frames, poses, int(rng.integers(2**31)))


def _identity(config: MicroConfig, subject: int):
    from unmask.synth.face import sample_identity

    return sample_identity(np.random.default_rng(np.random.SeedSequence([config.seed, 1, subject])),
                           config.width, config.height)


def make_micro_clip(config: MicroConfig, out: Path, subject: int, k: int, emotion: str) -> dict:
    """Render and encode one clip (unless complete); return its ground-truth row."""
    from unmask.data.video import VideoError, probe, write_video
    from unmask.synth.face import AUS, face_box, render_frames
    from unmask.synth.masked import AU_HEADER

    ident = _identity(config, subject)
    plan = plan_micro(config, subject, k, emotion, ident.expressivity)
    video = out / "videos" / f"{plan.clip_id}.mp4"
    ann = out / "annotations" / f"{plan.clip_id}.csv"
    W, H = config.width, config.height
    boxes = [face_box(ident, a, p, W, H) for a, p in zip(plan.frames, plan.poses)]
    try:
        done = video.is_file() and ann.is_file() and probe(video).num_frames == len(plan.frames)
    except VideoError:
        done = False
    if not done:
        frames = render_frames(ident, plan.frames, plan.poses, W, H, plan.noise_seed, config.noise)
        tmp = video.with_name(video.stem + ".part.mp4")
        write_video(frames, tmp, config.fps, config.crf)
        with open(ann, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(AU_HEADER + AUS)
            for i, (box, aus) in enumerate(zip(boxes, plan.frames)):
                w.writerow([i, *box, *(f"{aus.get(a, 0.0):.4f}" for a in AUS)])
        os.replace(tmp, video)
    b = np.array(boxes)
    union = (int(b[:, 0].min()), int(b[:, 1].min()), int((b[:, 0] + b[:, 2]).max() - b[:, 0].min()),
             int((b[:, 1] + b[:, 3]).max() - b[:, 1].min()))
    return {"clip_id": plan.clip_id, "subject": f"s{subject + 1:02d}", "emotion": emotion, "aus": "+".join(plan.aus),
            "dynamics": plan.dynamics, "ambiguous": int(emotion in AMBIGUOUS), "peak": plan.peak,
            "duration_frames": plan.offset - plan.onset, "duration_s": round((plan.offset - plan.onset) / config.fps, 3),
            "onset": plan.onset, "apex": plan.apex, "offset": plan.offset, "frames": len(plan.frames),
            "video": str(video), "annotations": str(ann), "face_box": union}


def generate_micro(out: str | Path, config: MicroConfig | None = None, *, workers: int = 1, progress: bool = True) -> Path:
    """Write the micro set into ``out`` (layout in the module docstring); resumable; returns the manifest path."""
    from tqdm import tqdm

    from unmask.data.manifest import Clip, write_manifest

    config = (config or MicroConfig()).validated()
    out = claim_output(out, asdict(config), "synth.json", ("videos", "annotations"))
    jobs = [(s, k, e) for s in range(config.subjects) for k, e in enumerate(config.classes_per_subject())]
    bar = tqdm(total=len(jobs), desc="synth micro", unit="clip", disable=not progress)
    rows = {}
    if workers <= 1:
        for job in jobs:
            rows[job] = make_micro_clip(config, out, *job)
            bar.update()
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from unmask.synth.masked import _worker_init

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init) as pool:
            for job, row in zip(jobs, pool.map(make_micro_clip, *zip(*[(config, out, *j) for j in jobs]))):
                rows[job] = row
                bar.update()
    bar.close()
    rows = [rows[j] for j in jobs]
    with open(out / "clips.csv", "w", newline="", encoding="utf-8") as f:
        keys = [k for k in rows[0] if k not in ("video", "annotations", "face_box")]
        w = csv.DictWriter(f, keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    tasks = micro_tasks()
    clips = [Clip(r["clip_id"], r["subject"], Path(r["video"]), {"emotion": r["emotion"], "aus": tuple(r["aus"].split("+"))},
                  r["onset"], r["apex"], r["offset"], face_box=r["face_box"], annotations=Path(r["annotations"]))
             for r in rows]
    return write_manifest(clips, out / "manifest.csv", tasks)


def read_ground_truth(folder: str | Path) -> dict[str, dict]:
    """``clips.csv`` of a micro set: clip id -> its ground-truth row (strings)."""
    path = Path(folder) / "clips.csv"
    if not path.is_file():
        raise UnmaskError(f"{path} not found: not a micro synth folder (unmask synth OUT --kind micro)")
    with open(path, newline="", encoding="utf-8") as f:
        return {r["clip_id"]: r for r in csv.DictReader(f)}
