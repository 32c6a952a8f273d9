"""unmask prepare: crops on real videos, failures, resume, workers, synthetic boxes, the cache contract."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from unmask.cli import main
from unmask.data.faces import create_detector, crop_face, yuface_available
from unmask.data.prepare import PreparedSet, clip_frame_indices, prepare
from unmask.data.video import read_frames
from unmask.emotions import MFED_TASKS
from unmask.errors import UnmaskError
from unmask.tasks import tasks_to_list

COLUMNS = ["clip_id", "subject", "video", "true_emotion", "disguised_emotion", "onset", "apex", "offset",
           "annotations", "face_box"]
DETECTORS = [
    pytest.param("yuface", marks=pytest.mark.skipif(not yuface_available(),
                                                    reason="yuface is not importable (wheels: CPython 3.11)")),
    "haar",
]


def write_manifest_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({"true_emotion": "happiness", "disguised_emotion": "sadness", "subject": "s1", **r})
    return path


def real_rows(faces_dir, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    video = str(faces_dir / "single_face.mp4")
    return [
        dict(clip_id="a", video=video, onset=0, apex=10, offset=30),
        dict(clip_id="b", video=video, onset=20, apex=45, offset=71, true_emotion="anger", disguised_emotion="anger"),
        dict(clip_id="c", video=video, onset=5, apex=5, offset=6, subject="s2"),
        dict(clip_id="noface", video=str(faces_dir / "no_face.mp4"), onset=0, apex=20, offset=40),
        dict(clip_id="toolong", video=video, onset=10, apex=20, offset=90),
        dict(clip_id="corrupt", video=str(corrupt), onset=0, apex=1, offset=2),
    ]


@pytest.fixture(scope="module", params=DETECTORS)
def prepared(request, faces_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"prep_{request.param}")
    manifest = write_manifest_csv(tmp / "manifest.csv", real_rows(faces_dir, tmp))
    result = prepare(manifest, tmp / "out", detector=request.param, size=112, clip_frames=4, progress=False)
    return request.param, manifest, tmp / "out", result


def test_real_clips_crops_and_failures(prepared):
    name, manifest, out, result = prepared
    assert (result.done, result.skipped, result.failed) == (3, 0, 3)
    reasons = {f.clip_id: f.reason for f in result.failures}
    assert reasons["noface"].startswith("no face in any of the 5 frames needed")
    assert "frame 90" in reasons["toolong"] and "beyond the video's length" in reasons["toolong"]
    assert "corrupt.mp4" in reasons["corrupt"]
    with open(out / "failures.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["clip_id"] for r in rows] == ["noface", "toolong", "corrupt"] and rows[0]["row"] == "5"

    ps = PreparedSet(out)
    assert ps.config == {"version": 1, "manifest": str(manifest.resolve()), "detector": name, "size": 112,
                         "margin": 0.2, "frames": "keyframes", "clip_frames": 4, "align": False,
                         "tasks": tasks_to_list(MFED_TASKS),
                         "unmask_version": ps.config["unmask_version"]}
    assert len(ps.manifest) == 6 and ps.clip_ids() == ["a", "b", "c"]
    assert [f.clip_id for f in ps.failures()] == ["noface", "toolong", "corrupt"]
    meta = ps.meta("a")
    assert meta["frames"] == {"onset": 0, "apex": 10, "offset": 30, "clip": [0, 10, 20, 30]}
    assert meta["detector"] == name and set(meta["boxes"]) == {"0", "10", "20", "30"}
    assert ps.meta("c")["frames"]["clip"] == [5, 5, 6, 6]  # shorter than K: frames repeat, in time order
    detector = create_detector(name)
    for clip_id in ps.clip_ids():
        for role in ("onset", "apex", "offset"):
            crop = ps.load(clip_id, role)
            assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
        clip = ps.load_clip(clip_id)
        assert clip.shape == (4, 112, 112, 3)
        # The face fills the crop: found again, centred, about 1 / (1 + 2 * margin) of its side.
        faces = detector.detect(ps.load(clip_id, "apex"))
        assert len(faces) == 1
        x, y, w, h = faces[0].box
        assert abs(x + w / 2 - 56) < 15 and abs(y + h / 2 - 56) < 20 and 45 < w < 100
    np.testing.assert_array_equal(ps.load("a", "onset"), ps.load_clip("a")[0])  # same frame, same crop
    with pytest.raises(UnmaskError, match="role"):
        ps.load("a", "peak")
    with pytest.raises(UnmaskError, match="not prepared"):
        ps.load("noface", "apex")


def test_rerun_skips_and_mismatch_is_an_error(prepared):
    name, manifest, out, _ = prepared
    again = prepare(manifest, out, detector=name, size=112, clip_frames=4, progress=False)
    assert (again.done, again.skipped, again.failed) == (0, 3, 3)
    with pytest.raises(UnmaskError, match="other settings") as e:
        prepare(manifest, out, detector=name, size=96, clip_frames=4, progress=False)
    assert any("size" in p for p in e.value.problems)
    other = "haar" if name == "yuface" else "none"
    with pytest.raises(UnmaskError, match="other settings"):
        prepare(manifest, out, detector=other, size=112, clip_frames=4, progress=False)


def test_workers_give_identical_crops(faces_dir, tmp_path):
    rows = real_rows(faces_dir, tmp_path)[:4]
    manifest = write_manifest_csv(tmp_path / "m.csv", rows)
    one = prepare(manifest, tmp_path / "one", detector="haar", size=64, clip_frames=3, progress=False)
    two = prepare(manifest, tmp_path / "two", detector="haar", size=64, clip_frames=3, workers=2, progress=False)
    assert (one.done, one.failed) == (two.done, two.failed) == (3, 1)
    a, b = PreparedSet(tmp_path / "one"), PreparedSet(tmp_path / "two")
    assert a.clip_ids() == b.clip_ids()
    for clip_id in a.clip_ids():
        assert a.meta(clip_id) == b.meta(clip_id)
        np.testing.assert_array_equal(a.load_clip(clip_id), b.load_clip(clip_id))
        np.testing.assert_array_equal(a.load(clip_id, "apex"), b.load(clip_id, "apex"))


def test_cli_exit_status_and_messages(faces_dir, tmp_path, capsys):
    rows = real_rows(faces_dir, tmp_path)
    good = write_manifest_csv(tmp_path / "good.csv", rows[2:3])
    assert main(["prepare", str(good), "--out", str(tmp_path / "g"), "--detector", "haar", "--size", "64",
                 "--clip-frames", "2", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "face detector: haar" in captured.err
    assert "prepared 1 clips (0 skipped as already done), 0 failed" in captured.out
    bad = write_manifest_csv(tmp_path / "bad.csv", rows[2:4])
    assert main(["prepare", str(bad), "--out", str(tmp_path / "b"), "--detector", "haar", "--size", "64",
                 "--clip-frames", "0", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "1 failed; failures in" in captured.out and "noface" in captured.err
    assert sorted(p.name for p in (tmp_path / "b/clips/c").iterdir()) == ["apex.png", "meta.json", "offset.png",
                                                                          "onset.png"]
    assert main(["prepare", str(bad), "--out", str(tmp_path / "b"), "--detector", "haar", "--size", "32",
                 "--clip-frames", "0"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_annotated_and_none_crop_exactly_the_box(make_video, draw_square, tmp_path):
    boxes = [(10 + 2 * i, 20 + i, 40, 40) for i in range(12)]  # the "face" drifts right and down
    video = make_video(tmp_path / "square.mp4", [draw_square(b) for b in boxes])
    ann = tmp_path / "square_boxes.csv"
    # Frames 4-6 have no box: they borrow the nearest annotated one.
    ann.write_text("frame,x,y,w,h\n" + "".join(f"{i},{x},{y},{w},{h}\n" for i, (x, y, w, h) in enumerate(boxes)
                                              if i not in (4, 5, 6)))
    crops = tmp_path / "crops.mp4"
    quadrants = np.zeros((32, 32, 3), np.uint8)
    quadrants[:16, :16] = quadrants[16:, 16:] = 200
    make_video(crops, [quadrants] * 5)
    manifest = write_manifest_csv(tmp_path / "m.csv", [
        dict(clip_id="ann", video=video.name, onset=1, apex=3, offset=9, annotations=ann.name),
        dict(clip_id="box", video=video.name, onset=0, apex=0, offset=0, face_box="10 20 40 40"),
        dict(clip_id="nobox", video=video.name, onset=0, apex=2, offset=4),
    ])
    result = prepare(manifest, tmp_path / "out", detector="annotated", size=40, margin=0.0, clip_frames=5,
                     progress=False)
    assert (result.done, result.failed) == (2, 1) and result.failures[0].reason.startswith("no face")
    ps = PreparedSet(tmp_path / "out")
    meta = ps.meta("ann")
    assert meta["frames"]["clip"] == [1, 3, 5, 7, 9]
    assert meta["box_source"]["5"] == "nearest:3" and meta["boxes"]["5"] == list(boxes[3])
    assert meta["box_source"]["7"] == "annotated" and meta["boxes"]["7"] == list(boxes[7])
    decoded = read_frames(video, range(12))
    for k, i in enumerate(meta["frames"]["clip"]):
        crop = ps.load_clip("ann")[k]
        np.testing.assert_array_equal(crop, crop_face(decoded[i], meta["boxes"][str(i)], margin=0, size=40))
        if i != 5:  # its own box: the crop is the square, edge to edge (up to compression at the rim)
            assert np.abs(crop[3:-3, 3:-3].astype(int) - (230, 40, 40)).max() < 40
    np.testing.assert_array_equal(ps.load("box", "apex"), decoded[0][20:60, 10:50])

    # detector none: the frames are already crops; the whole frame is resized.
    manifest = write_manifest_csv(tmp_path / "n.csv", [dict(clip_id="n", video=crops.name, onset=0, apex=2,
                                                            offset=4)])
    prepare(manifest, tmp_path / "none", detector="none", size=16, margin=0.0, clip_frames=0, progress=False)
    frame = read_frames(crops, [2])[2]
    got = PreparedSet(tmp_path / "none").load("n", "apex")
    np.testing.assert_array_equal(got, crop_face(frame, (0, 0, 32, 32), margin=0, size=16))
    assert got[:8, :8].mean() > 150 and got[:8, 8:].mean() < 50


def test_not_a_prepared_set(tmp_path):
    with pytest.raises(UnmaskError, match="not a prepared set"):
        PreparedSet(tmp_path)
    (tmp_path / "prepare.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(UnmaskError, match="version 99"):
        PreparedSet(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something.txt").write_text("x")
    manifest = write_manifest_csv(tmp_path / "m.csv", [dict(clip_id="x", video="v.mp4", onset=0, apex=0, offset=0)])
    with pytest.raises(UnmaskError, match="not a prepared set"):
        prepare(manifest, busy, detector="none", progress=False)


def test_missing_video_is_a_clip_failure(tmp_path):
    manifest = write_manifest_csv(tmp_path / "m.csv", [dict(clip_id="x", video="v.mp4", onset=0, apex=0, offset=0)])
    result = prepare(manifest, tmp_path / "out", detector="none", progress=False)
    assert result.failed == 1 and "video not found" in result.failures[0].reason


def test_clip_frame_indices():
    assert clip_frame_indices(0, 70, 8) == [0, 10, 20, 30, 40, 50, 60, 70]
    assert clip_frame_indices(3, 3, 3) == [3, 3, 3]
    assert clip_frame_indices(0, 9, 0) == []
    assert clip_frame_indices(2, 8, 1) == [5]
