"""The photo renderer (``unmask synth --kind photo``): real faces found by YuNet, warped around their landmarks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import FACES

pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason=f"real face fixtures not found at {FACES}")
yuface = pytest.importorskip("yuface")


@pytest.fixture(scope="module")
def rig():
    from unmask.synth.photo import Source, build_rig, canonical_face

    return build_rig(canonical_face(Source(FACES / "single_face.mp4", 12), 224, 256))


def test_canonical_face_levels_the_eyes_where_the_detector_put_them(rig):
    lm = rig.face.landmarks
    assert abs(lm[0, 1] - lm[1, 1]) < 0.5  # eyes level
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]
    assert rig.face.iod == pytest.approx(0.30 * 224, rel=1e-3)
    assert lm[2, 1] > lm[0, 1] and lm[3, 1] > lm[2, 1]  # nose below the eyes, mouth below the nose
    # the detector finds the same face again in the canonical image, its landmarks within YuNet's own scatter
    from unmask.data.faces import best_face, create_detector

    again = best_face(create_detector("yuface").detect(rig.face.image.astype(np.uint8)))
    assert np.abs(np.array(again.landmarks) - lm).max() < 0.15 * rig.face.iod


def _field_at(rig, au, point):
    from unmask.synth.photo import displacement

    D = displacement(rig, {au: 1.0})
    x, y = (int(round(v)) for v in point)
    return D[y, x]


def test_each_au_moves_its_region_the_intended_way(rig):
    le, re, nose, ml, mr = rig.face.landmarks
    d = rig.face.iod
    def up(v):
        return v[1] < -0.03 * d

    def down(v):
        return v[1] > 0.03 * d
    # lip corner puller: corners up and outward; depressor: down
    assert up(_field_at(rig, "AU12", ml)) and _field_at(rig, "AU12", ml)[0] < 0 < _field_at(rig, "AU12", mr)[0]
    assert down(_field_at(rig, "AU15", ml)) and down(_field_at(rig, "AU15", mr))
    # brows: inner raiser up, lowerer down and toward the midline
    brow_l, brow_r = le + (0.15 * d, -0.38 * d), re + (-0.15 * d, -0.38 * d)
    assert up(_field_at(rig, "AU01", brow_l)) and up(_field_at(rig, "AU01", brow_r))
    assert down(_field_at(rig, "AU04", brow_l)) and _field_at(rig, "AU04", brow_l)[0] > 0 > _field_at(rig, "AU04", brow_r)[0]
    assert up(_field_at(rig, "AU05", le + (0, -0.09 * d)))  # upper lid up
    assert down(_field_at(rig, "AU26", (ml + mr) / 2 + (0, 0.45 * d)))  # jaw drop
    assert up(_field_at(rig, "AU09", nose + (0.17 * d, 0)))  # nose wings up
    # an AU far from a region leaves it alone
    assert np.abs(_field_at(rig, "AU12", brow_l)).max() < 0.01 * d


def test_rendered_pixels_move_with_the_field(rig):
    """Content moves by +D: a dot drawn at each mouth corner ends up above it with happiness, below with sadness."""
    from unmask.synth.photo import Face, Rig, render_expression

    img = np.zeros_like(rig.face.image)
    for x, y in rig.face.landmarks[3:]:
        img[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2] = 255
    dots = Rig(Face(img, rig.face.landmarks, rig.face.box, "dots"), rig.fields, {})
    y0 = rig.face.landmarks[3:, 1].mean()

    def dot_y(aus):
        out = render_expression(dots, aus)[..., 0]
        ys, _ = np.nonzero(out > 60)
        return ys.mean()

    assert dot_y({}) == pytest.approx(y0, abs=0.6)
    assert dot_y({"AU12": 1.0}) < y0 - 4
    assert dot_y({"AU15": 1.0}) > y0 + 4


def test_the_detector_sees_the_smile_and_the_frown(rig):
    """YuNet, run on the rendered frames, puts the mouth corners higher for happiness than for sadness."""
    from unmask.data.faces import best_face, create_detector
    from unmask.synth.masked import PROTOTYPES
    from unmask.synth.photo import render_expression

    det = create_detector("yuface")

    def corners_y(emotion):
        img = np.clip(render_expression(rig, PROTOTYPES[emotion]), 0, 255).astype(np.uint8)
        return np.mean([p[1] for p in best_face(det.detect(img)).landmarks[3:]])

    assert corners_y("happiness") < corners_y("sadness") - 2


def test_plan_follows_the_paradigm():
    from unmask.synth.masked import PROTOTYPES
    from unmask.synth.photo import PhotoConfig, plan_clip

    cfg = PhotoConfig(faces=str(FACES))
    plan = plan_clip(cfg, 0, "sadness", "happiness")
    assert 0 < plan.onset < plan.apex < plan.offset < len(plan.aus) - 1
    assert all(v == 0 for v in plan.aus[0].values()) and all(v == 0 for v in plan.aus[-1].values())
    onset, apex = plan.aus[plan.onset], plan.aus[plan.apex]
    assert onset["AU15"] > 0.7 and onset["AU12"] == 0  # the felt emotion alone
    assert apex["AU12"] > 0.7  # the disguise at full
    # leakage: the felt emotion's upper-face AU keeps leak x its intensity, its lower-face AU much less
    assert apex["AU01"] == pytest.approx(0.35 * onset["AU01"], rel=0.05)
    assert apex["AU15"] == pytest.approx(0.35 * 0.25 * onset["AU15"], rel=0.05)
    assert set(PROTOTYPES["happiness"]) <= {k for k, v in apex.items() if v > 0}


@pytest.fixture(scope="module")
def one_photo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    shutil.copy(FACES / "0-f15-hao-ph.jpg", folder / "a.jpg")
    return folder


def test_generate_writes_a_valid_manifest_and_is_deterministic(one_photo, tmp_path):
    from unmask.data.manifest import read_annotations, read_manifest
    from unmask.data.video import probe
    from unmask.synth.photo import PhotoConfig, generate_photo

    cfg = PhotoConfig(faces=str(one_photo), width=128, height=144, seed=3)
    m1 = generate_photo(tmp_path / "a", cfg, progress=False)
    m2 = generate_photo(tmp_path / "b", cfg, progress=False)
    man = read_manifest(m1)
    assert [t.name for t in man.tasks] == ["true", "disguised"]
    assert len(man) == 30 and {c.subject for c in man} == {"p01"}
    assert {(c.labels["true"], c.labels["disguised"]) for c in man} == {
        (t, d) for t in {c.labels["true"] for c in man} for d in {c.labels["disguised"] for c in man} if t != d}
    for c in man.clips[:3]:
        info = probe(c.video)
        assert (info.width, info.height, round(info.fps)) == (128, 144, 30)
        assert c.video.suffix == ".avi"
        boxes = read_annotations(c.annotations)["boxes"]
        assert len(boxes) == info.num_frames and c.apex < info.num_frames
        assert all(0 <= b[0] and b[0] + b[2] <= 128 + 8 for b in boxes.values())
    for c in man.clips:
        assert c.video.read_bytes() == (m2.parent / "videos" / c.video.name).read_bytes()
    # other seed, other clips
    other = generate_photo(tmp_path / "c", PhotoConfig(faces=str(one_photo), width=128, height=144, seed=4),
                           progress=False)
    clip = man.clips[0]
    assert clip.video.read_bytes() != (other.parent / "videos" / clip.video.name).read_bytes()
    # a rerun resumes; other options into the same folder are refused
    assert generate_photo(tmp_path / "a", cfg, progress=False) == m1
    from unmask.errors import UnmaskError

    with pytest.raises(UnmaskError, match="was made with other options"):
        generate_photo(tmp_path / "a", PhotoConfig(faces=str(one_photo), width=128, height=144, seed=9),
                       progress=False)


def test_cli_messages(tmp_path, capsys):
    from unmask.cli import main

    assert main(["synth", str(tmp_path / "o"), "--kind", "photo"]) == 2
    assert "--faces DIR" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "o"), "--kind", "photo", "--faces", str(FACES), "--subjects", "99"]) == 2
    assert "only 6 source face(s)" in capsys.readouterr().err
    nofaces = tmp_path / "nofaces"
    nofaces.mkdir()
    shutil.copy(FACES / "free-mountain-vector-01.jpg", nofaces)
    assert main(["synth", str(tmp_path / "o2"), "--kind", "photo", "--faces", str(nofaces)]) == 2
    assert "no face with landmarks found in free-mountain-vector-01.jpg" in capsys.readouterr().err
