"""prepare's sampling policies: keyframes, uniform:T (no key frames needed), span:T (onset to offset)."""

from __future__ import annotations

import numpy as np
import pytest

from unmask.cli import main
from unmask.data.clips import ClipDataset
from unmask.data.prepare import PreparedSet, prepare
from unmask.data.sampling import clip_frame_indices, parse_sampling
from unmask.errors import UnmaskError

HEADER = "clip_id,subject,video,true_emotion,disguised_emotion,onset,apex,offset\n"


@pytest.fixture
def coded(tmp_path, make_video, frame_code):
    """A 40-frame video whose square frames show their own index, and a manifest of three kinds of rows."""
    encode_index, _ = frame_code
    make_video(tmp_path / "v.mp4", [encode_index(i, 96, 96) for i in range(40)])
    manifest = tmp_path / "m.csv"
    manifest.write_text(HEADER + "wild,s1,v.mp4,happy,sad,,,\n"
                                 "micro,s1,v.mp4,happy,sad,10,,30\n"
                                 "masked,s2,v.mp4,happy,sad,5,12,20\n")
    return manifest


def indices(ps, cid, frame_code):
    return [frame_code[1](crop) for crop in ps.load_clip(cid)]


def test_parse_sampling():
    assert str(parse_sampling("uniform:16")) == "uniform:16" and parse_sampling("span:8").count == 8
    assert str(parse_sampling("keyframes", 4)) == "keyframes" and parse_sampling("keyframes", 4).count == 4
    for bad, message in [("random:3", "expected keyframes, uniform:T, span:T or rise:T"), ("uniform", "T >= 1"),
                         ("span:0", "T >= 1"), ("keyframes:3", "--clip-frames")]:
        with pytest.raises(UnmaskError, match=message):
            parse_sampling(bad)


def test_uniform_spreads_over_the_whole_video_and_needs_no_key_frames(coded, tmp_path, frame_code):
    result = prepare(coded, tmp_path / "u", detector="none", size=96, frames="uniform:5", progress=False)
    assert (result.done, result.failed) == (3, 0)
    ps = PreparedSet(tmp_path / "u")
    assert ps.config["frames"] == "uniform:5" and ps.config["clip_frames"] == 5 and str(ps.sampling) == "uniform:5"
    for cid in ("wild", "micro", "masked"):
        assert indices(ps, cid, frame_code) == clip_frame_indices(0, 39, 5) == [0, 10, 20, 29, 39]
        assert ps.meta(cid)["video_frames"] == 40
    assert ps.roles("wild") == [] and ps.roles("micro") == ["onset", "offset"]
    assert ps.roles("masked") == ["onset", "apex", "offset"]
    assert frame_code[1](ps.load("masked", "apex")) == 12
    with pytest.raises(UnmaskError, match="'wild' .* has no apex frame .* --frames uniform:5"):
        ps.load("wild", "apex")
    # the lazy dataset gives the same frames, in order
    x = ClipDataset(ps, ["wild"], frames=5, size=96)[0][1]
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), ps.load_clip("wild"))
    # a rerun skips every clip (uniform's frames depend on the video's length, recorded in meta.json) ...
    again = prepare(coded, tmp_path / "u", detector="none", size=96, frames="uniform:5", progress=False)
    assert (again.done, again.skipped) == (0, 3)
    # ... and another policy in the same folder is refused: the policy is part of a set's settings
    with pytest.raises(UnmaskError, match="other settings") as e:
        prepare(coded, tmp_path / "u", detector="none", size=96, frames="uniform:6", progress=False)
    assert "frames: 'uniform:5' there, 'uniform:6' now" in e.value.problems


def test_span_samples_from_onset_to_offset_and_needs_them(coded, tmp_path, frame_code):
    with pytest.raises(UnmaskError, match="1 row") as e:
        prepare(coded, tmp_path / "s", detector="none", size=96, frames="span:5", progress=False)
    assert e.value.problems == [f"{coded}:2: clip wild has no onset or offset frame; --frames span:5 needs onset, "
                                f"offset (uniform:T needs none)"]
    result = prepare(coded, tmp_path / "s", detector="none", size=96, frames="span:5", skip_invalid=True,
                     progress=False)
    assert result.done == 2 and result.invalid == e.value.problems
    ps = PreparedSet(tmp_path / "s")
    assert indices(ps, "micro", frame_code) == [10, 15, 20, 25, 30]
    assert indices(ps, "masked", frame_code) == clip_frame_indices(5, 20, 5)
    assert ps.roles("micro") == ["onset", "offset"] and ps.clip_ids() == ["micro", "masked"]


def test_keyframes_need_all_three_and_the_cli_names_the_rows(coded, tmp_path, frame_code, capsys):
    args = ["prepare", str(coded), "--detector", "none", "--size", "96", "--clip-frames", "3", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "k")]) == 2
    err = capsys.readouterr().err
    assert "2 row(s)" in err and f"{coded}:2: clip wild has no onset or apex or offset frame" in err
    assert f"{coded}:3: clip micro has no apex frame; --frames keyframes needs onset, apex, offset" in err
    assert main(args + ["--out", str(tmp_path / "k"), "--skip-invalid"]) == 1
    ps = PreparedSet(tmp_path / "k")
    assert ps.clip_ids() == ["masked"] and ps.roles("masked") == ["onset", "apex", "offset"]
    assert indices(ps, "masked", frame_code) == [5, 12, 20] and ps.config["frames"] == "keyframes"
    assert main(args + ["--out", str(tmp_path / "w"), "--frames", "uniform:3"]) == 0
    assert indices(PreparedSet(tmp_path / "w"), "wild", frame_code) == [0, 20, 39]
    assert main(args + ["--out", str(tmp_path / "x"), "--frames", "every:2"]) == 2
    assert "unknown frame sampling 'every:2'; expected keyframes, uniform:T, span:T or rise:T" in capsys.readouterr().err
