"""A synthetic MFED-shaped dataset of masked facial expressions with known ground truth (``unmask synth``).

Why it exists: MFED is available only on application, yet the whole pipeline (prepare -> dataset -> model ->
LOSO -> report) must run and be tested end to end. This generator writes the same layout a real source adapter
would (a manifest, real ``.mp4`` videos, per-frame annotation CSVs) from procedurally drawn faces whose action
units (AUs) we control exactly, so every number downstream can be checked against a known truth.

The clip model (one clip = one subject showing the *true* emotion masked by a *disguised* one):

    neutral -> rise of the true emotion -> **onset** (true emotion at its peak, alone)
            -> the disguise rises while the true emotion is suppressed
            -> **apex** (disguise at full intensity + a weak residue of the true emotion)
            -> decay -> **offset** (back to neutral) -> neutral

The residue follows Ekman & Friesen's *leakage hypothesis*: people control the lower face (mouth) far better
than the upper face (brows, lids), because the mouth is what they monitor and what social display rules
target, while brow and eye muscles are less voluntary. So at the apex the true emotion survives mainly on the
upper-face AUs 1, 2, 4, 5, 6, 7 at ``leak`` times its full intensity, and only at ``leak * lower_leak_ratio``
on the lower face. Where the disguise uses the same AU, the stronger of the two shows (``max``): a residue
hidden under an AU the disguise already drives is invisible, as it would be on a real face. ``leak = 0``
makes the apex carry no trace of the true emotion (only the onset paradigm can then recover it); the ``hard``
preset weakens the residue and strengthens the onset, which is where the onset-vs-apex paradigm comparison
becomes interesting.

Prototypes are EMFACS: happiness 6+12, sadness 1+4+15, surprise 1+2+5+26, fear 1+2+4+5+7+20+26,
anger 4+5+7+23, disgust 9+15+16 (with the lip parting, AU25, that AU26/AU16 imply).

Determinism: a subject's identity comes from an RNG seeded by ``(seed, subject)``; everything per clip
(timing, intensity jitter, head-motion phase, sensor noise) from an RNG seeded by ``(seed, subject, pair)``.
The output is therefore identical for a given seed whatever the number of workers or the order of work.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from unmask.data.video import write_video
from unmask.emotions import EMOTIONS, MFED_TASKS, masked_pairs
from unmask.errors import UnmaskError
from unmask.io import claim_output

if TYPE_CHECKING:
    from unmask.data.manifest import Clip
    from unmask.synth.face import Identity

C = TypeVar("C")  # a generator's config dataclass

#: EMFACS prototypes, AU -> intensity at full expression (1.0 = a full prototypical action).
PROTOTYPES: dict[str, dict[str, float]] = {
    "anger": {"AU04": 1.0, "AU05": 0.7, "AU07": 0.9, "AU23": 0.9},
    "disgust": {"AU09": 1.0, "AU15": 0.6, "AU16": 0.6, "AU25": 0.4},
    "fear": {"AU01": 1.0, "AU02": 0.8, "AU04": 0.7, "AU05": 1.0, "AU07": 0.5, "AU20": 1.0, "AU25": 1.0, "AU26": 0.5},
    "happiness": {"AU06": 0.9, "AU12": 1.0, "AU25": 0.3},
    "sadness": {"AU01": 1.0, "AU04": 0.6, "AU15": 1.0},
    "surprise": {"AU01": 1.0, "AU02": 1.0, "AU05": 0.8, "AU25": 1.0, "AU26": 1.0},
}
#: Brow and eye AUs: where the true emotion leaks through a deliberate disguise.
UPPER_FACE: frozenset[str] = frozenset({"AU01", "AU02", "AU04", "AU05", "AU06", "AU07"})

PRESETS: dict[str, dict] = {
    "default": {"leak": 0.35, "onset_strength": 1.0},
    # weaker residue at the apex, stronger true emotion at the onset: the onset paradigm's advantage grows
    "hard": {"leak": 0.15, "onset_strength": 1.3},
}


def from_preset(cls: type[C], preset: str, overrides: dict, what: str) -> C:
    """``cls`` (a generator's config dataclass with ``preset`` and ``validated()``) from a paradigm preset, then
    ``overrides`` (``None`` values ignored); unknown presets and option names are errors naming the choices."""
    if preset not in PRESETS:
        raise UnmaskError(f"unknown preset {preset!r}; expected one of: {', '.join(PRESETS)}")
    unknown = set(overrides) - {f.name for f in fields(cls)}
    if unknown:
        raise UnmaskError(f"unknown {what} option(s) {', '.join(sorted(unknown))}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}, "preset": preset}
    return cls(**values).validated()


def paradigm_problems(cfg: Any) -> list[str]:
    """What is wrong with the masked-expression settings every renderer of this paradigm shares (``leak``,
    ``lower_leak_ratio``, ``onset_strength``, ``fps``, ``jitter``, ``motion``, ``noise``)."""
    problems = []
    if not 0 <= cfg.leak <= 1:
        problems.append(f"leak must be within [0, 1] (got {cfg.leak})")
    if not 0 <= cfg.lower_leak_ratio <= 1:
        problems.append(f"lower_leak_ratio must be within [0, 1] (got {cfg.lower_leak_ratio})")
    if not 0 < cfg.onset_strength <= 1.4:
        problems.append(f"onset_strength must be within (0, 1.4] (got {cfg.onset_strength})")
    if not 1 <= cfg.fps <= 240:
        problems.append(f"fps must be within [1, 240] (got {cfg.fps})")
    for name in ("jitter", "motion", "noise"):
        if getattr(cfg, name) < 0:
            problems.append(f"{name} must not be negative (got {getattr(cfg, name)})")
    return problems


@dataclass(frozen=True)
class SynthConfig:
    """Every parameter of the generator; saved as ``synth.json`` next to the manifest."""

    subjects: int = 8
    seed: int = 0
    width: int = 320
    height: int = 240
    fps: float = 25.0
    preset: str = "default"
    leak: float = 0.35             # upper-face residue of the true emotion at the apex, x its full intensity
    lower_leak_ratio: float = 0.25  # lower-face residue = leak * this (the mouth is well controlled)
    onset_strength: float = 1.0     # true emotion at the onset, x its full intensity
    congruent: bool = False         # also the 6 clips with true == disguised
    jitter: float = 0.05            # per-clip relative std of AU intensities (0: none)
    timing_jitter: int = 1          # each phase length varies by +- this many frames per clip
    motion: float = 1.0             # head-motion amplitude multiplier (0: still head)
    noise: float = 1.0              # sensor-noise multiplier (0: noiseless)
    crf: int = 18                   # x264 quality; low enough that small AU residues survive

    @classmethod
    def from_preset(cls, preset: str = "default", **overrides: Any) -> SynthConfig:
        """The preset's values, then ``overrides`` (``None`` values are ignored): explicit flags win."""
        return from_preset(cls, preset, overrides, "synth")

    def validated(self) -> SynthConfig:
        problems = []
        if self.subjects < 1:
            problems.append(f"subjects must be at least 1 (got {self.subjects})")
        if self.width < 64 or self.height < 48 or self.width % 2 or self.height % 2:
            problems.append(f"size must be even and at least 64x48 (got {self.width}x{self.height})")
        problems += paradigm_problems(self)
        if not 0 <= self.timing_jitter <= 2:
            problems.append(f"timing_jitter must be 0, 1 or 2 (got {self.timing_jitter})")
        if self.preset not in PRESETS:
            problems.append(f"unknown preset {self.preset!r}; expected one of: {', '.join(PRESETS)}")
        if problems:
            raise UnmaskError("invalid synth configuration", problems)
        return self

    def pairs(self) -> list[tuple[str, str]]:
        extra = [(e, e) for e in EMOTIONS] if self.congruent else []
        return masked_pairs() + extra


def subject_name(index: int) -> str:
    return f"s{index + 1:02d}"


def clip_name(subject: int, true: str, disguised: str) -> str:
    return f"{subject_name(subject)}_{true}_as_{disguised}"


def _pair_code(true: str, disguised: str) -> int:
    return EMOTIONS.index(true) * len(EMOTIONS) + EMOTIONS.index(disguised)


def subject_rng(config: SynthConfig, subject: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([config.seed, 1, subject]))


def clip_rng(config: SynthConfig, subject: int, true: str, disguised: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([config.seed, 2, subject, _pair_code(true, disguised)]))


# ---------------------------------------------------------------------------------------------- clip plan
@dataclass(frozen=True)
class ClipPlan:
    """What one clip shows, frame by frame, before any pixel is drawn."""

    clip_id: str
    subject: int
    true: str
    disguised: str
    onset: int
    apex: int
    offset: int
    aus: list[dict[str, float]]          # per frame, rendered AU intensities
    poses: list[tuple[float, float, float, float]]  # per frame (dx, dy, roll, scale)
    noise_seed: int


def _ramp(f: np.ndarray, keys: list[tuple[int, float]]) -> np.ndarray:
    """Piecewise smoothstep through key frames ``(frame, value)``; constant outside."""
    out = np.full(f.shape, keys[0][1], dtype=np.float64)
    for (f0, v0), (f1, v1) in zip(keys, keys[1:]):
        m = (f >= f0) & (f <= f1)
        x = (f[m] - f0) / max(f1 - f0, 1)
        out[m] = v0 + (v1 - v0) * x * x * (3 - 2 * x)
    out[f > keys[-1][0]] = keys[-1][1]
    return out


def plan_clip(config: SynthConfig, subject: int, true: str, disguised: str, identity: Identity | None = None) -> ClipPlan:
    """Timeline, AU trajectories and head motion of one clip (cheap; no rendering).

    Key frames: the true emotion rises from neutral to ``onset_strength`` at ``onset`` and holds one frame;
    then the disguise ramps 0 -> 1 while the true emotion falls to its residue (reached together, at the start
    of the apex plateau); ``apex`` is the middle of the plateau; both decay to exactly 0 at ``offset``.
    """
    from unmask.synth.face import AUS, sample_identity

    ident = identity or sample_identity(subject_rng(config, subject), config.width, config.height)
    rng = clip_rng(config, subject, true, disguised)
    j = config.timing_jitter
    n0, rise, trans, plateau, fall, tail = (int(b + rng.integers(-j, j + 1)) for b in (3, 5, 6, 8, 6, 4))
    onset = n0 - 1 + rise
    hold = onset + 1
    plateau_start = hold + trans
    apex = plateau_start + plateau // 2
    plateau_end = plateau_start + plateau
    offset = plateau_end + fall
    n = offset + 1 + tail
    f = np.arange(n, dtype=np.float64)

    gain = ident.expressivity

    def full(emotion):  # full intensity of each AU for this clip: subject gain x small per-clip jitter
        return {au: v * gain * max(0.0, 1 + config.jitter * float(rng.standard_normal()))
                for au, v in PROTOTYPES[emotion].items()}

    true_full, disg_full = full(true), full(disguised)
    true_curve = {}
    for au, v in true_full.items():
        residue = config.leak * v * (1.0 if au in UPPER_FACE else config.lower_leak_ratio)
        true_curve[au] = _ramp(f, [(n0 - 1, 0.0), (onset, config.onset_strength * v), (hold, config.onset_strength * v),
                                   (plateau_start, residue), (plateau_end, residue), (offset, 0.0)])
    disg_level = _ramp(f, [(hold, 0.0), (plateau_start, 1.0), (plateau_end, 1.0), (offset, 0.0)])
    aus = []
    for i in range(n):
        frame = {}
        for au in AUS:
            t = true_curve[au][i] if au in true_curve else 0.0
            d = disg_full.get(au, 0.0) * disg_level[i]
            frame[au] = round(float(max(t, d)), 4)
        aus.append(frame)

    # head motion: slow sway with a per-clip phase; a few pixels and a couple of degrees at most
    ph = rng.uniform(0, 2 * math.pi, 4)
    amp = config.motion * np.array([0.012 * config.width, 0.01 * config.height, 2.0, 0.02])
    w = 2 * math.pi / max(n, 1)
    poses = [(float(amp[0] * math.sin(w * i + ph[0])), float(amp[1] * math.sin(1.3 * w * i + ph[1])),
              float(amp[2] * math.sin(0.8 * w * i + ph[2])), float(1 + amp[3] * math.sin(0.6 * w * i + ph[3])))
             for i in range(n)]
    return ClipPlan(clip_name(subject, true, disguised), subject, true, disguised, onset, apex, offset,
                    aus, poses, int(rng.integers(2**31)))


# ---------------------------------------------------------------------------------------------- rendering
def render_clip(config: SynthConfig, plan: ClipPlan, identity: Identity | None = None) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Yield ``(frame [H, W, 3] uint8 RGB, face box)`` for every frame of ``plan``."""
    from unmask.synth.face import face_box, render_frames, sample_identity

    W, H = config.width, config.height
    ident = identity or sample_identity(subject_rng(config, plan.subject), W, H)
    images = render_frames(ident, plan.aus, plan.poses, W, H, plan.noise_seed, config.noise)
    for img, aus, pose in zip(images, plan.aus, plan.poses):
        yield img, face_box(ident, aus, pose, W, H)


AU_HEADER = ("frame", "x", "y", "w", "h")


def _write_annotations(path: Path, plan: ClipPlan, boxes) -> None:
    from unmask.synth.face import AUS

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(AU_HEADER + AUS)
        for i, (box, aus) in enumerate(zip(boxes, plan.aus)):
            w.writerow([i, *box, *(f"{aus[a]:.4f}" for a in AUS)])


def _union(boxes) -> tuple[int, int, int, int]:
    b = np.array(boxes)
    x0, y0 = b[:, 0].min(), b[:, 1].min()
    x1, y1 = (b[:, 0] + b[:, 2]).max(), (b[:, 1] + b[:, 3]).max()
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _complete(video: Path, annotations: Path, n: int) -> bool:
    from unmask.data.video import VideoError, probe

    if not (video.is_file() and annotations.is_file()):
        return False
    try:
        return probe(video).num_frames == n
    except VideoError:
        return False


def make_clip(config: SynthConfig, out: Path, subject: int, true: str, disguised: str) -> Clip:
    """Render, encode and annotate one clip unless it is already complete; return its manifest ``Clip``."""
    from unmask.data.manifest import Clip
    from unmask.synth.face import face_box, sample_identity

    ident = sample_identity(subject_rng(config, subject), config.width, config.height)
    plan = plan_clip(config, subject, true, disguised, ident)
    video = out / "videos" / f"{plan.clip_id}.mp4"
    ann = out / "annotations" / f"{plan.clip_id}.csv"
    if _complete(video, ann, len(plan.aus)):
        boxes = [face_box(ident, a, p, config.width, config.height) for a, p in zip(plan.aus, plan.poses)]
    else:
        boxes = []

        def frames():
            for img, box in render_clip(config, plan, ident):
                boxes.append(box)
                yield img

        tmp = video.with_name(video.stem + ".part.mp4")
        n = write_video(frames(), tmp, config.fps, config.crf)
        if n != len(plan.aus):
            raise RuntimeError(f"{plan.clip_id}: wrote {n} frames, planned {len(plan.aus)}")
        _write_annotations(ann, plan, boxes)
        os.replace(tmp, video)  # the video appears only when complete: a rerun resumes cleanly
    return Clip(plan.clip_id, subject_name(subject), video, {"true": true, "disguised": disguised}, plan.onset,
                plan.apex, plan.offset, face_box=_union(boxes), annotations=ann, congruent=true == disguised)


def _worker_init():
    import cv2

    cv2.setNumThreads(1)


# ---------------------------------------------------------------------------------------------- entry point
def generate(out: str | Path, config: SynthConfig | None = None, *, workers: int = 1, progress: bool = True,
             preview: bool = False) -> Path:
    """Write the synthetic set into ``out`` and return the manifest path.

    Layout: ``manifest.csv``, ``synth.json`` (the resolved config), ``videos/<clip_id>.mp4``,
    ``annotations/<clip_id>.csv`` (per frame: face box and rendered AU intensities), and with ``preview``
    ``preview.png`` (a contact sheet of onset and apex frames). Rerunning with the same config into the same
    folder skips finished clips; a different config into a non-empty folder is refused.
    """
    from tqdm import tqdm

    from unmask.data.manifest import write_manifest

    config = (config or SynthConfig()).validated()
    if workers < 1:
        raise UnmaskError(f"workers must be at least 1 (got {workers})")
    out = claim_output(out, asdict(config), "synth.json", ("videos", "annotations"))

    jobs = [(s, t, d) for s in range(config.subjects) for t, d in config.pairs()]
    bar = tqdm(total=len(jobs), desc="synth", unit="clip", disable=not progress)
    results = {}
    if workers == 1:
        for job in jobs:
            results[job] = make_clip(config, out, *job)
            bar.update()
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init) as pool:
            futures = {pool.submit(make_clip, config, out, *job): job for job in jobs}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update()
    bar.close()
    manifest = write_manifest([results[j] for j in jobs], out / "manifest.csv", MFED_TASKS)
    if preview:
        write_preview(manifest, out / "preview.png")
    return manifest


def write_preview(manifest_path: str | Path, path: str | Path, n: int = 12) -> Path:
    """Contact sheet: for ``n`` clips (every true emotion, varied disguises), the onset and apex frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unmask.data.manifest import read_manifest

    by_key = {(c.subject, c.labels["true"], c.labels["disguised"]): c for c in read_manifest(manifest_path).clips}
    subjects = sorted({k[0] for k in by_key})
    chosen = []
    for i in range(n):  # every true emotion in turn, the disguise and subject rotating so both labels vary
        true = EMOTIONS[i % len(EMOTIONS)]
        others = [e for e in EMOTIONS if e != true]
        key = (subjects[(i // len(EMOTIONS)) % len(subjects)], true, others[(i * 2 + i // len(EMOTIONS)) % len(others)])
        if key in by_key:
            chosen.append(by_key[key])
    cols = 4
    rows = math.ceil(len(chosen) / cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(1.7 * 2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, clip in enumerate(chosen):
        frames = _decode(clip.video, [clip.onset, clip.apex])
        if clip.face_box:  # zoom on the face, with a margin for hair and chin
            x, y, w, h = clip.face_box
            H, W = frames[0].shape[:2]
            x0, y0 = max(0, int(x - 0.25 * w)), max(0, int(y - 0.2 * h))
            x1, y1 = min(W, int(x + 1.25 * w)), min(H, int(y + 1.15 * h))
            frames = [f[y0:y1, x0:x1] for f in frames]
        for j, (role, img) in enumerate(zip(("onset", "apex"), frames)):
            ax = axes[i // cols, 2 * (i % cols) + j]
            ax.imshow(img)
            label = f"true {clip.labels['true']}" if role == "onset" else f"as {clip.labels['disguised']}"
            ax.set_title(f"{clip.subject} {role}\n{label}", fontsize=8)
    fig.suptitle("unmask synth: onset (true emotion) | apex (disguise + upper-face residue)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _decode(video: Path, indices: list[int]) -> list[np.ndarray]:
    import av

    want, got = set(indices), {}
    with av.open(str(video)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i in want:
                got[i] = fr.to_ndarray(format="rgb24")
            if len(got) == len(want):
                break
    return [got[i] for i in indices]


__all__ = ["SynthConfig", "PRESETS", "PROTOTYPES", "UPPER_FACE", "generate", "plan_clip", "render_clip",
           "make_clip", "write_preview", "clip_name", "subject_name"]
