"""Frame-exact decoding: every index comes back as the frame that was written there."""

from __future__ import annotations

import random

import numpy as np
import pytest

from unmask.data.video import VideoError, iter_frames, iter_timed_frames, probe, read_frames
from unmask.errors import UnmaskError


@pytest.mark.parametrize("codec,suffix", [("libx264", ".mp4"), ("mpeg4", ".avi"), ("mpeg4", ".mp4")])
def test_read_frames_exact_in_random_order(coded_video, frame_code, codec, suffix):
    _, decode_index = frame_code
    n = 60
    path = coded_video(n, codec, suffix)
    assert probe(path).num_frames == n
    order = list(range(n))
    random.Random(0).shuffle(order)
    frames = read_frames(path, order)
    assert sorted(frames) == list(range(n))
    for i in order:
        f = frames[i]
        assert f.dtype == np.uint8 and f.shape == (96, 160, 3)
        assert decode_index(f) == i


def test_read_frames_subset_and_duplicates(coded_video, frame_code):
    _, decode_index = frame_code
    path = coded_video(40)
    frames = read_frames(path, [33, 2, 2, 17])
    assert sorted(frames) == [2, 17, 33]
    assert all(decode_index(f) == i for i, f in frames.items())
    assert read_frames(path, []) == {}


def test_iter_frames(coded_video, frame_code):
    _, decode_index = frame_code
    path = coded_video(30)
    got = [(i, decode_index(f)) for i, f in iter_frames(path)]
    assert got == [(i, i) for i in range(30)]
    got = [(i, decode_index(f)) for i, f in iter_frames(path, every=4, start=3, stop=20)]
    assert got == [(i, i) for i in range(3, 20, 4)]
    assert [i for i, _ in iter_frames(path, start=25, stop=1000)] == [25, 26, 27, 28, 29]
    with pytest.raises(VideoError, match="start frame 40"):
        list(iter_frames(path, start=40))


def test_iter_timed_frames_gives_each_frame_its_own_time(make_vfr_video, frame_code, tmp_path):
    encode_index, decode_index = frame_code
    times = [0.0, 0.04, 0.08, 0.5, 0.54, 1.5, 1.52, 2.0]
    path = make_vfr_video(tmp_path / "vfr.mp4", [encode_index(i) for i in range(8)], times)
    got = [(i, t, decode_index(f)) for i, t, f in iter_timed_frames(path)]
    assert [(i, code) for i, _, code in got] == [(i, i) for i in range(8)]
    np.testing.assert_allclose([t for _, t, _ in got], times, atol=1e-6)
    assert [i for i, _, _ in iter_timed_frames(path, every=3, start=1)] == [1, 4, 7]


def test_out_of_range_names_file_and_frame(coded_video):
    path = coded_video(20)
    with pytest.raises(VideoError) as e:
        read_frames(path, [3, 20])
    msg = str(e.value)
    assert str(path) in msg and "frame 20" in msg and "20 frames" in msg
    assert isinstance(e.value, UnmaskError)
    with pytest.raises(VideoError, match="negative"):
        read_frames(path, [-1])


def test_missing_garbage_and_truncated_files(tmp_path, coded_video):
    with pytest.raises(VideoError, match="not found"):
        probe(tmp_path / "nope.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(random.Random(1).getrandbits(8) for _ in range(5000)))
    with pytest.raises(VideoError) as e:
        probe(garbage)
    assert str(garbage) in str(e.value)
    with pytest.raises(VideoError):
        read_frames(garbage, [0])
    # A truncated file: the container's index is gone or points past the end; asking for a late frame fails
    # with a VideoError naming the file (either "cannot decode" or "beyond the video's length").
    full = coded_video(50)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with pytest.raises(VideoError) as e:
        read_frames(cut, [49])
    assert str(cut) in str(e.value)


def test_real_video(faces_dir):
    path = faces_dir / "single_face.mp4"
    info = probe(path)
    assert info.num_frames == 72 and (info.width, info.height) == (640, 360) and info.fps == pytest.approx(30)
    frames = read_frames(path, [71, 0, 36])
    assert all(f.shape == (360, 640, 3) and f.dtype == np.uint8 for f in frames.values())
    streamed = dict(iter_frames(path, every=12))
    assert sorted(streamed) == list(range(0, 72, 12))
    np.testing.assert_array_equal(streamed[36], frames[36])  # same index, same frame, both ways
    with pytest.raises(VideoError, match="frame 72"):
        read_frames(path, [72])


def test_edit_list_preroll_is_not_counted(faces_dir):
    # no_face.mp4 holds 98 packets, 3 of them pre-roll dropped by its edit list: 95 frames decode.
    path = faces_dir / "no_face.mp4"
    n = probe(path).num_frames
    assert n == 95
    assert sorted(read_frames(path, [n - 1])) == [n - 1]
