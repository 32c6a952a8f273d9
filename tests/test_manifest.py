"""Manifest validation: every problem at once, each with file, row and column; the validate command."""

from __future__ import annotations

import pytest

from unmask.cli import main
from unmask.data.manifest import read_annotations, read_manifest, validate_manifest, write_manifest
from unmask.errors import UnmaskError

HEADER = "clip_id,subject,video,true_emotion,disguised_emotion,onset,apex,offset\n"


@pytest.fixture
def video(tmp_path, make_video, draw_square):
    # 12 real frames: the frame-range check must count them.
    return make_video(tmp_path / "v.mp4", [draw_square((10, 10, 30, 30), size=(48, 64))] * 12)


def test_valid_manifest_round_trip(tmp_path, video):
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "a,s1,v.mp4,Happy,sad,0,3,11\nb,s2,v.mp4,anger,anger,1,1,2\n")
    manifest, problems = validate_manifest(path)
    assert problems == []
    assert [c.clip_id for c in manifest] == ["a", "b"] and manifest.subjects == ["s1", "s2"]
    assert manifest.clips[0].labels["true"] == "happiness" and manifest.clips[0].video == video
    assert [c.clip_id for c in manifest.masked()] == ["a"] and manifest.clips[1].congruent
    copy = write_manifest(manifest.clips, tmp_path / "sub" / "copy.csv", manifest.tasks)
    again = read_manifest(copy, check_videos=True)
    assert [(c.clip_id, c.video.resolve(), c.onset, c.offset) for c in again] == \
        [(c.clip_id, c.video.resolve(), c.onset, c.offset) for c in manifest]


def test_every_problem_reported_with_file_row_column(tmp_path, video):
    path = tmp_path / "m.csv"
    path.write_text(HEADER +
                    "a,s1,v.mp4,contempt,sad,0,3,11\n"      # 2: unknown emotion
                    "b,s1,v.mp4,happy,sad,5,3,11\n"         # 3: onset > apex
                    "c,s1,v.mp4,happy,sad,0,3,12\n"         # 4: offset beyond 12 frames
                    "d,s1,missing.mp4,happy,sad,0,1,2\n"    # 5: missing video
                    "a,s1,v.mp4,happy,sad,0,1,2\n"          # 6: duplicate id
                    "e,,v.mp4,happy,sad,0,1,2\n"            # 7: empty subject
                    "f,s1,v.mp4,happy,sad,0,1,x\n"          # 8: not a frame index
                    "../g,s1,v.mp4,happy,sad,0,1,2\n"       # 9: not usable as a folder name
                    "ok,s1,v.mp4,happy,sad,0,1,2\n")
    manifest, problems = validate_manifest(path)
    assert [c.clip_id for c in manifest] == ["ok"]
    expected = [(2, "true_emotion", "unknown label 'contempt' for task 'true'"), (3, "apex", "onset <= apex <= offset"),
                (4, "offset", "frame 12 is beyond the video's length (12 frames"), (5, "video", "not found"),
                (6, "clip_id", "duplicate clip id 'a' (first on line 2)"), (7, "subject", "empty subject"),
                (8, "offset", "non-negative integer"), (9, "clip_id", "folder name")]
    assert len(problems) == len(expected)
    for p, (line, column, text) in zip(problems, expected):
        assert p.startswith(f"{path}:{line}: column '{column}'") and text in p, p
    with pytest.raises(UnmaskError) as e:
        read_manifest(path)
    assert len(e.value.problems) == 7  # the frame-range check needs check_videos


def test_validate_command(tmp_path, video, capsys):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(HEADER + "a,s1,v.mp4,happy,sad,0,3,11\n")
    bad.write_text(HEADER + "a,s1,v.mp4,happy,sad,0,3,40\nb,s1,v.mp4,joyful,sad,0,1,2\n")
    assert main(["validate", str(good)]) == 0
    assert "1 valid clip(s)" in capsys.readouterr().out
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:2: column 'offset'" in out and f"{bad}:3: column 'true_emotion'" in out and "2 problem(s)" in out
    assert main(["validate", "--no-videos", str(bad)]) == 1  # the emotion is still wrong


def test_corrupt_video_is_a_problem(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"not a video at all" * 100)
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "a,s1,v.mp4,happy,sad,0,3,11\n")
    _, problems = validate_manifest(path)
    assert len(problems) == 1 and "column 'video': cannot read video" in problems[0]


@pytest.mark.parametrize("text,message", [
    ("clip_id,subject,video\na,b,c\n", "declares no tasks"), ("a,b\n1,2\n", "missing column(s) clip_id, subject, video"),
    ("clip_id,subject,video,true_emotion,disguised_emotion,onset\na,b,c,happy,sad,x\n",
     "expected a non-negative integer frame index or nothing, got 'x'"),
    ("", "missing column(s)"),
    (HEADER, "no rows"),
])
def test_malformed_manifest_is_one_clean_error(tmp_path, capsys, text, message):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(UnmaskError) as e:
        read_manifest(path)
    assert message in e.value.render()
    assert main(["validate", str(path)]) in (1, 2)
    err = capsys.readouterr()
    assert "Traceback" not in err.err + err.out and message.split("(")[0] in err.err + err.out


def test_binary_and_missing_manifest(tmp_path, capsys):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(UnmaskError, match="not a UTF-8 CSV"):
        read_manifest(path)
    assert main(["validate", str(tmp_path / "nope.csv")]) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_face_box_and_annotations(tmp_path, video):
    (tmp_path / "ann.csv").write_text("frame,x,y,w,h,AU12\n0,1,2,30,30,1\n3,,,,,0.5\n")
    path = tmp_path / "m.csv"
    path.write_text("clip_id,subject,video,true_emotion,disguised_emotion,onset,apex,offset,face_box,annotations\n"
                    "a,s1,v.mp4,happy,sad,0,3,11,10 10 30 30,ann.csv\n"
                    "b,s1,v.mp4,happy,sad,0,3,11,10 10 0 30,\n"
                    "c,s1,v.mp4,happy,sad,0,3,11,,nope.csv\n")
    manifest, problems = validate_manifest(path)
    assert manifest.clips[0].face_box == (10, 10, 30, 30)
    assert len(problems) == 2 and "face_box" in problems[0] and "annotations" in problems[1]
    ann = read_annotations(manifest.clips[0].annotations)
    assert ann["boxes"] == {0: (1, 2, 30, 30)} and ann["aus"] == {0: {"AU12": 1.0}, 3: {"AU12": 0.5}}
    with pytest.raises(UnmaskError, match="annotations file not found"):
        read_annotations(tmp_path / "nope.csv")
    # check_files=False: a copy of the manifest stays readable without its videos (prepared sets)
    (tmp_path / "v.mp4").unlink()
    path.write_text(HEADER + "a,s1,v.mp4,happy,sad,0,3,11\n")
    assert len(read_manifest(path, check_files=False)) == 1


def test_tasks_declared_beside_the_manifest(tmp_path, video):
    """A dataset that is not MFED declares its own tasks: a 3-class emotion and a multi-label AU task."""
    from unmask.data.manifest import tasks_path

    path = tmp_path / "m.csv"
    path.write_text("clip_id,subject,video,onset,apex,offset,emotion,aus\n"
                    "a,s1,v.mp4,0,3,11,Positive,AU12+au6\nb,s2,v.mp4,1,1,2,surprise,none\nc,s2,v.mp4,1,1,2,,\n")
    tasks_path(path).write_text("tasks:\n- {name: emotion, kind: single, labels: [negative, positive, surprise]}\n"
                                "- {name: aus, kind: multi, labels: [AU6, AU12, AU4]}\n")
    m = read_manifest(path)
    assert [t.name for t in m.tasks] == ["emotion", "aus"]
    a, b, c = m.clips
    assert a.labels == {"emotion": "positive", "aus": ("AU6", "AU12")}
    assert b.labels == {"emotion": "surprise", "aus": ()} and c.labels == {"emotion": None, "aus": None}
    assert m.tasks[1].target(a.labels["aus"]) == [1.0, 1.0, 0.0] and m.tasks[0].target(None) == -1
    out = write_manifest(m.clips, tmp_path / "copy.csv", m.tasks)  # the round trip keeps labels and tasks
    again = read_manifest(out)
    assert again.tasks == m.tasks and [x.labels for x in again.clips] == [x.labels for x in m.clips]
    path.write_text("clip_id,subject,video,onset,apex,offset,emotion,aus\na,s1,v.mp4,0,3,11,joy,AU99\n")
    _, problems = validate_manifest(path)
    assert len(problems) == 2 and "column 'emotion': unknown label 'joy' for task 'emotion'" in problems[0]
    assert "column 'aus': unknown label 'AU99' for task 'aus'" in problems[1]


def test_key_frames_are_optional_and_ordered_where_given(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"")
    path = tmp_path / "m.csv"
    path.write_text("clip_id,subject,video,true_emotion,disguised_emotion,onset,apex,offset\n"
                    "wild,s1,v.mp4,happy,sad,,,\n"      # 2: in the wild: no key frames
                    "micro,s1,v.mp4,happy,sad,4,,9\n"   # 3: onset and offset, no apex (SMIC)
                    "bad,s1,v.mp4,happy,sad,9,,4\n")    # 4: offset before onset
    manifest, problems = validate_manifest(path, check_videos=False)
    assert problems == [f"{path}:4: column 'offset': onset <= apex <= offset violated (9, , 4)"]
    wild, micro = manifest.clips
    assert (wild.onset, wild.apex, wild.offset) == (None, None, None)
    assert (micro.onset, micro.apex, micro.offset) == (4, None, 9)
    again = write_manifest(manifest.clips, tmp_path / "again.csv", manifest.tasks)
    assert [(c.onset, c.apex, c.offset) for c in read_manifest(again, check_files=False)] == [
        (None, None, None), (4, None, 9)]
    no_columns = tmp_path / "n.csv"
    no_columns.write_text("clip_id,subject,video,true_emotion,disguised_emotion\nw,s1,v.mp4,happy,sad\n")
    assert read_manifest(no_columns).clips[0].apex is None
