"""DFEW, FERV39k and MAFW adapters on fixtures written in the datasets' released layouts; frame folders as video."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unmask.cli import main
from unmask.data.manifest import read_manifest
from unmask.data.sources import get_source, list_sources
from unmask.data.sources.dfer import import_dfew, import_ferv39k, import_mafw, split_path
from unmask.data.video import probe, read_frames
from unmask.errors import UnmaskError
from unmask.train.protocols import make_folds


def frame_folder(path, n=3, value=0):
    """``n`` 16x16 JPEGs named 1.jpg ... n.jpg whose grey level encodes the frame index."""
    path.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(path / f"{i + 1}.jpg"), np.full((16, 16, 3), 20 * i + value, np.uint8))
    return path


def dfew_root(tmp, rows=None):
    """DFEW as released: 5 test lists (video_name,label) + train lists, frames in Clip/clip_224x224/<id>/."""
    rows = rows or {k: [(2 * k - 1, k), (2 * k, k + 1 if k < 7 else 1)] for k in range(1, 6)}
    split = tmp / "EmoLabel_DataSplit"
    (split / "test(single-labeled)").mkdir(parents=True)
    (split / "train(single-labeled)").mkdir(parents=True)
    for k, items in rows.items():
        text = "video_name,label\n" + "".join(f"{v},{lab}\n" for v, lab in items)
        (split / "test(single-labeled)" / f"set_{k}.csv").write_text(text)
        others = [it for j, its in rows.items() if j != k for it in its]
        (split / "train(single-labeled)" / f"set_{k}.csv").write_text(
            "video_name,label\n" + "".join(f"{v},{lab}\n" for v, lab in others))
        for v, _ in items:
            frame_folder(tmp / "Clip" / "clip_224x224" / f"{v:05d}", n=3)
    return tmp


def test_the_three_sources_are_registered_with_their_classes():
    assert {"dfew", "ferv39k", "mafw"} <= set(list_sources())
    (seven,) = get_source("dfew").tasks
    assert seven.labels == ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
    assert get_source("ferv39k").tasks == (seven,)
    assert len(get_source("mafw").tasks[0].labels) == 11
    assert seven.normalize("Happy") == "happy" and seven.normalize("anger") == "angry"


def test_a_frame_folder_reads_as_a_video_in_natural_order(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in (1, 2, 10):  # natural order: 2 before 10
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((8, 12, 3), i * 10, np.uint8))
    info = probe(folder)
    assert (info.num_frames, info.width, info.height) == (3, 12, 8)
    frames = read_frames(folder, [1, 2])
    assert frames[1][0, 0, 0] == 20 and frames[2][0, 0, 0] == 100
    with pytest.raises(UnmaskError, match="frame 3 beyond the folder's length"):
        read_frames(folder, [3])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnmaskError, match="no images .* in frame folder"):
        probe(tmp_path / "empty")


def test_dfew_folds_become_subjects_and_multilabel_rows_are_counted(tmp_path, capsys):
    rows = {k: [(2 * k - 1, k), (2 * k, k + 1)] for k in range(1, 6)}
    rows[3].append((11, 0))  # a multi-label clip: left out, counted
    root = dfew_root(tmp_path / "DFEW", rows)
    out = tmp_path / "m.csv"
    assert main(["import", "dfew", str(root), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "wrote 10 clip(s)" in said and "left out 1 multi-label row(s) (label 0)" in said
    m = read_manifest(out)
    by_id = m.by_id()
    assert by_id["00001"].labels["emotion"] == "happy" and by_id["00001"].subject == "set_1"
    assert by_id["00006"].labels["emotion"] == "angry" and by_id["00006"].subject == "set_3"
    assert by_id["00006"].video.is_dir() and probe(by_id["00006"].video).num_frames == 3
    # the official folds are the protocol: LOSO over the fold-subjects, validation from another fold
    folds = make_folds(m.subjects, name="loso", val_subjects=1, seed=0)
    assert [f.name for f in folds] == [f"set_{k}" for k in range(1, 6)]
    for f in folds:
        assert f.test == (f.name,) and f.name not in f.val and len(f.train) == 3


def test_dfew_bad_rows_and_missing_clips_name_file_and_row(tmp_path, capsys):
    root = dfew_root(tmp_path / "DFEW")
    test2 = root / "EmoLabel_DataSplit" / "test(single-labeled)" / "set_2.csv"
    test2.write_text("video_name,label\n3,2\n4,9\n77,1\n")  # label 9 is unknown; clip 77 has no frames
    with pytest.raises(UnmaskError) as err:
        import_dfew(root, tmp_path / "m.csv")
    problems = "\n".join(err.value.problems)
    assert f"{test2}:3: column 'label': expected a number 0-7 (0 = multi-label), got '9'" in problems
    assert f"{test2}:4: clip '00077': no frame folder or video named 00077" in problems
    assert not (tmp_path / "m.csv").exists()
    assert main(["import", "dfew", str(root), "--out", str(tmp_path / "m.csv")]) == 2
    assert "set_2.csv:3" in capsys.readouterr().err
    assert main(["import", "dfew", str(root), "--out", str(tmp_path / "m.csv"), "--skip-invalid"]) == 1
    assert len(read_manifest(tmp_path / "m.csv").clips) == 9


def test_dfew_train_list_that_leaks_a_test_clip_is_refused(tmp_path):
    root = dfew_root(tmp_path / "DFEW")
    train1 = root / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_1.csv"
    train1.write_text(train1.read_text() + "1,1\n")
    with pytest.raises(UnmaskError) as err:
        import_dfew(root)
    assert any("is in both the train and the test list of fold 1" in p and str(train1) in p for p in err.value.problems)
    with pytest.raises(UnmaskError, match="split list not found: .*set_1.csv"):
        import_dfew(tmp_path / "nowhere", clips=root / "Clip" / "clip_224x224")


def test_ferv39k_fixed_split_with_validation_from_the_training_list(tmp_path):
    root = tmp_path / "FERV39k"
    setups = root / "4_setups" / "All_scenes"
    setups.mkdir(parents=True)
    train = [f"Action/Happy/{i:04d} Happy" for i in range(30)] + [f"Daily/Sad/{i:04d} Sad" for i in range(10)]
    test = [f"Daily/Angry/{i:04d} Angry" for i in range(5)]
    (setups / "train_All.csv").write_text("\n".join(train) + "\n")
    (setups / "test_All.csv").write_text("\n".join(test) + "\n")
    for line in train + test:
        frame_folder(root / "2_ClipsforFaceCrop" / line.split()[0], n=2)
    result = import_ferv39k(root, tmp_path / "f.csv")
    assert len(result.clips) == 45 and result.split_file == split_path(tmp_path / "f.csv")
    m = read_manifest(tmp_path / "f.csv")
    (fold,) = make_folds(m.subjects, name="split", split_file=result.split_file)
    assert fold.test == ("test",) and fold.val == ("train_9",) and "train_9" not in fold.train
    assert {c.labels["emotion"] for c in m.clips if c.subject == "test"} == {"angry"}
    (setups / "test_All.csv").write_text("Daily/Angry/0000 Angry\nDaily/Angry/0001 Bored\nDaily/Angry/0001\n")
    with pytest.raises(UnmaskError) as err:
        import_ferv39k(root)
    problems = "\n".join(err.value.problems)
    assert "test_All.csv:2: unknown label 'Bored'" in problems and "test_All.csv:3: expected 'NAME LABEL'" in problems


def test_mafw_eleven_classes_from_its_text_lists(tmp_path):
    root = tmp_path / "MAFW"
    labels = ["anger", "contempt", "helplessness", "disappointment", "neutral"]
    for k in range(1, 6):
        folder = root / "Train & Test Set" / "single" / "no_caption" / f"set_{k}"
        folder.mkdir(parents=True)
        (folder / "test.txt").write_text(f"{k:05d}.mp4 {labels[k - 1]}\n")
        frame_folder(root / "data" / "frames" / f"{k:05d}", n=2)
    result = import_mafw(root, tmp_path / "m.csv")
    m = read_manifest(tmp_path / "m.csv")
    assert len(result.clips) == 5 and m.tasks[0].num_classes == 11
    assert m.by_id()["00002"].labels["emotion"] == "contempt" and m.by_id()["00002"].subject == "set_2"
