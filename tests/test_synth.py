"""Contracts of the synthetic masked-expression set (``unmask synth``).

Small on purpose (160x120, one or two subjects): the whole file runs in well under a minute on two cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unmask.cli import main
from unmask.data.manifest import read_annotations, read_manifest, validate_manifest
from unmask.data.video import probe
from unmask.emotions import EMOTIONS, masked_pairs
from unmask.synth.face import AUS, sample_identity
from unmask.synth.masked import (
    PROTOTYPES,
    UPPER_FACE,
    SynthConfig,
    generate,
    make_clip,
    plan_clip,
    render_clip,
    subject_rng,
)

SMALL = dict(width=160, height=120)


def decode(video: Path, index: int) -> np.ndarray:
    import av

    with av.open(str(video)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24").astype(np.float32)
    raise AssertionError(f"{video} has no frame {index}")


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Two subjects, seed 0, default leak (0.35)."""
    out = tmp_path_factory.mktemp("synth2")
    config = SynthConfig(subjects=2, seed=0, **SMALL)
    return config, generate(out, config, progress=False)


@pytest.fixture(scope="module")
def one_congruent(tmp_path_factory):
    """One subject, same seed, with congruent clips, made by two worker processes."""
    out = tmp_path_factory.mktemp("synth1c")
    config = SynthConfig(subjects=1, seed=0, congruent=True, **SMALL)
    return config, generate(out, config, workers=2, progress=False)


def test_clip_counts_ids_and_layout(two, one_congruent):
    config, path = two
    m = read_manifest(path)
    assert len(m) == 60 and m.subjects == ["s01", "s02"]
    assert {(c.labels["true"], c.labels["disguised"]) for c in m if c.subject == "s01"} == set(masked_pairs())
    assert "s01_happiness_as_anger" in m.by_id()
    assert json.loads((path.parent / "synth.json").read_text())["leak"] == pytest.approx(0.35)
    m1 = read_manifest(one_congruent[1])
    assert len(m1) == 36 and len(m1.masked()) == 30
    assert {c.clip_id for c in m1 if c.congruent} == {f"s01_{e}_as_{e}" for e in EMOTIONS}


def test_manifest_validates_and_frame_counts_are_exact(two):
    config, path = two
    manifest, problems = validate_manifest(path, check_videos=True)
    assert problems == []
    for clip in manifest:
        info = probe(clip.video)
        ann = read_annotations(clip.annotations)
        assert info.num_frames == len(ann["aus"]) == max(ann["aus"]) + 1
        assert (info.width, info.height) == (160, 120) and info.fps == pytest.approx(25.0)
        assert 28 <= info.num_frames <= 40
        x, y, w, h = clip.face_box  # the clip box is the union of the per-frame boxes
        for bx, by, bw, bh in ann["boxes"].values():
            assert x <= bx and y <= by and bx + bw <= x + w and by + bh <= y + h
        assert x + w <= 160 and y + h <= 120


def test_onset_apex_offset_mark_the_rendered_timeline(two):
    """Onset = first frame of the true emotion's peak (before any disguise); apex = disguise at full
    intensity; offset = first frame back at neutral."""
    _, path = two
    for clip in read_manifest(path):
        aus = read_annotations(clip.annotations)["aus"]
        n = len(aus)
        true_au = max(PROTOTYPES[clip.labels["true"]], key=PROTOTYPES[clip.labels["true"]].get)
        peak = max(aus[f][true_au] for f in range(clip.onset + 2))  # before the disguise takes over
        assert aus[clip.onset][true_au] == pytest.approx(peak, abs=1e-4)
        assert all(aus[f][true_au] < peak - 1e-3 for f in range(clip.onset))
        for au in PROTOTYPES[clip.labels["disguised"]]:  # the plateau's level (the onset may exceed it)
            assert aus[clip.apex][au] == pytest.approx(max(aus[f][au] for f in range(clip.apex, n)), abs=1e-4)
            if au not in PROTOTYPES[clip.labels["true"]]:
                assert aus[clip.onset][au] == 0  # the onset shows the true emotion alone
        assert all(v == 0 for v in aus[clip.offset].values())
        assert any(v > 0 for v in aus[clip.offset - 1].values())
        assert all(v == 0 for v in aus[0].values())


def test_onset_shows_true_prototype_apex_disguise_plus_upper_face_residue(two):
    config, path = two
    for clip in read_manifest(path).masked():
        aus = read_annotations(clip.annotations)["aus"]
        onset, apex = aus[clip.onset], aus[clip.apex]
        true, disg = PROTOTYPES[clip.labels["true"]], PROTOTYPES[clip.labels["disguised"]]
        # onset: exactly the true prototype's AUs are active, none of the disguise's others
        assert {au for au, v in onset.items() if v > 0} == set(true)
        for au in disg:
            assert apex[au] >= 0.6 * disg[au]  # disguise at full intensity (subject gain and jitter allowed)
        for au in true:
            if au in disg:
                continue  # hidden under the disguise's own action
            ratio = apex[au] / onset[au]
            expected = config.leak * (1.0 if au in UPPER_FACE else config.lower_leak_ratio) / config.onset_strength
            assert ratio == pytest.approx(expected, rel=0.02, abs=2e-4), (clip.clip_id, au)
        for au in set(AUS) - set(true) - set(disg):
            assert apex[au] == 0
    # the residue lives mostly in the upper face: summed over clips, upper-face residue dominates
    upper = lower = 0.0
    for clip in read_manifest(path).masked():
        aus = read_annotations(clip.annotations)["aus"]
        for au in set(PROTOTYPES[clip.labels["true"]]) - set(PROTOTYPES[clip.labels["disguised"]]):
            if au in UPPER_FACE:
                upper += aus[clip.apex][au]
            else:
                lower += aus[clip.apex][au]
    assert upper > 2 * lower


def test_leak_zero_leaves_no_residue():
    config = SynthConfig(subjects=1, leak=0.0, **SMALL)
    for true, disg in masked_pairs():
        plan = plan_clip(config, 0, true, disg)
        apex = plan.aus[plan.apex]
        assert all(apex[au] == 0 for au in AUS if au not in PROTOTYPES[disg]), (true, disg)
        assert all(apex[au] > 0.5 * v for au, v in PROTOTYPES[disg].items())
        assert any(plan.aus[plan.onset][au] > 0.8 * v for au, v in PROTOTYPES[true].items())


def test_deterministic_and_independent_of_subject_count_congruent_and_workers(two, one_congruent):
    """Same seed: identical rows and identical decoded apex frames for s01, although the other run had one
    subject, congruent clips and two worker processes."""
    a = read_manifest(two[1]).by_id()
    b = read_manifest(one_congruent[1]).by_id()
    for cid in ("s01_happiness_as_anger", "s01_fear_as_surprise", "s01_disgust_as_sadness"):
        ca, cb = a[cid], b[cid]
        assert (ca.onset, ca.apex, ca.offset, ca.face_box) == (cb.onset, cb.apex, cb.offset, cb.face_box)
        assert ca.annotations.read_text() == cb.annotations.read_text()
        assert np.array_equal(decode(ca.video, ca.apex), decode(cb.video, cb.apex))


def test_different_seed_gives_different_data():
    c0, c1 = SynthConfig(subjects=1, seed=0, **SMALL), SynthConfig(subjects=1, seed=1, **SMALL)
    p0, p1 = plan_clip(c0, 0, "fear", "happiness"), plan_clip(c1, 0, "fear", "happiness")
    f0 = list(render_clip(c0, p0))[p0.apex][0].astype(np.float32)
    f1 = list(render_clip(c1, p1))[p1.apex][0].astype(np.float32)
    assert np.abs(f0 - f1).mean() > 10  # another face, background and lighting


def test_identity_is_consistent_across_clips(two):
    """A subject's neutral first frames are closer to each other than to the other subject's."""
    m = read_manifest(two[1]).by_id()
    s1a = decode(m["s01_anger_as_fear"].video, 0)
    s1b = decode(m["s01_sadness_as_surprise"].video, 0)
    s2 = decode(m["s02_anger_as_fear"].video, 0)
    same, other = np.abs(s1a - s1b).mean(), np.abs(s1a - s2).mean()
    assert same < 0.25 * other, (same, other)
    # the identity comes from the subject's own RNG
    i1 = sample_identity(subject_rng(two[0], 0), 160, 120)
    assert i1 == sample_identity(subject_rng(two[0], 0), 160, 120)
    assert i1 != sample_identity(subject_rng(two[0], 1), 160, 120)
    assert i1.cx != 80  # the face is not exactly centred


def test_apex_pixels_carry_the_true_emotion_only_when_leak_is_positive(tmp_path):
    """Same subject, same disguise, different true emotion; noise, motion and jitter off so the only
    difference is the residue, measured on decoded video (the residue must survive compression)."""
    diffs = {}
    for leak in (0.35, 0.0):
        config = SynthConfig(subjects=1, leak=leak, noise=0, motion=0, jitter=0, **SMALL)
        out = tmp_path / str(leak)
        (out / "videos").mkdir(parents=True)
        (out / "annotations").mkdir()
        a = make_clip(config, out, 0, "sadness", "happiness")
        b = make_clip(config, out, 0, "surprise", "happiness")
        x, y, w, h = a.face_box
        diffs[leak] = np.abs(decode(a.video, a.apex) - decode(b.video, b.apex))[y:y + h, x:x + w].max(axis=2)
        # the onset shows the true emotion strongly in both cases
        assert np.abs(decode(a.video, a.onset) - decode(b.video, b.onset)).mean() > 1.0
    leaky, clean = diffs[0.35], diffs[0.0]
    assert leaky.max() > 60 and (leaky > 25).sum() > 100
    # only codec differences remain (the apex is predicted from frames that did differ)
    assert (clean > 25).sum() == 0 and np.percentile(clean, 99) < 0.25 * np.percentile(leaky, 99)


def test_presets_and_flag_overrides():
    hard = SynthConfig.from_preset("hard")
    default = SynthConfig.from_preset("default")
    assert hard.leak < default.leak and hard.onset_strength > default.onset_strength
    assert SynthConfig.from_preset("hard", leak=0.2, onset_strength=None).leak == 0.2
    assert SynthConfig.from_preset("hard", leak=0.2).onset_strength == hard.onset_strength


def test_rerun_same_config_resumes_and_other_config_is_refused(two, capsys):
    config, path = two
    out = path.parent
    videos = sorted((out / "videos").glob("*.mp4"))
    stamps = {v: v.stat().st_mtime_ns for v in videos}
    victim = out / "videos" / "s02_anger_as_fear.mp4"
    victim.unlink()  # an interrupted run: one clip missing
    argv = ["synth", str(out), "--subjects", "2", "--size", "160x120", "--quiet"]
    assert main(argv) == 0
    assert victim.is_file() and probe(victim).num_frames == len(read_annotations(
        out / "annotations" / "s02_anger_as_fear.csv")["aus"])
    assert all(v.stat().st_mtime_ns == t for v, t in stamps.items() if v != victim)  # others skipped
    assert main(argv[:-1] + ["--seed", "7", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "was made with other options" in err and "pick another folder" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--subjects", "0"], "subjects must be at least 1"),
    (["--size", "161x120"], "size must be even"),
    (["--leak", "1.5"], "leak must be within"),
])
def test_bad_arguments_give_one_clean_error(tmp_path, capsys, argv, message):
    assert main(["synth", str(tmp_path / "out"), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_non_empty_foreign_folder_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["synth", str(tmp_path), "--subjects", "1", "--quiet"]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_kinds_come_from_one_registry():
    """`unmask synth --kind` offers the registered kinds, in registration order; an unknown name lists them."""
    import os
    import subprocess
    import sys

    from unmask.cli import build_parser
    from unmask.errors import UnmaskError
    from unmask.synth import SynthKind, get_kind, list_kinds

    assert list_kinds() == ["masked", "photo", "dfer", "micro"]
    assert all(isinstance(get_kind(k), SynthKind) and get_kind(k).name == k for k in list_kinds())
    with pytest.raises(UnmaskError, match="known kinds: masked, photo, dfer, micro"):
        get_kind("cartoon")
    synth = build_parser()._subparsers._group_actions[0].choices["synth"]
    kind = next(a for a in synth._actions if a.dest == "kind")
    assert list(kind.choices) == list_kinds() and kind.default == "masked"
    # listing the kinds imports no renderer (the CLI builds its parser on every start)
    code = "import sys, unmask.synth; assert not [m for m in sys.modules if m.startswith('unmask.synth.') and m not in ('unmask.synth._registry', 'unmask.synth.kinds')], sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
