"""`unmask predict` with a MEDN checkpoint on raw videos: the onset-to-apex input made as `prepare` made it gives
the engine's probabilities; the apex search finds the synthetic clips' apex; bad onset/apex gets a clear message."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from unmask.cli import main
from unmask.data.faces import create_detector
from unmask.data.onset_apex import search_apex
from unmask.errors import UnmaskError
from unmask.predict import Predictor, read_results


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    """A tiny synthetic micro set (3 subjects x 4 clips), prepared with real face detection, and one MEDN fold."""
    root = tmp_path_factory.mktemp("medn_predict")
    data, prep, run = root / "micro", root / "prep", root / "run"
    assert main(["synth", str(data), "--kind", "micro", "--subjects", "3", "--clips", "4", "--size", "128x112",
                 "--quiet"]) == 0
    assert main(["prepare", str(data / "manifest.csv"), "--out", str(prep), "--detector", "auto", "--size", "48",
                 "--frames", "rise:4", "--flow", "dis", "--no-progress"]) == 0
    overrides = [f"data.prepared={prep}", "data.detector=auto", "model.backbone_args.img_size=32", "optim.epochs=2",
                 "optim.batch_size=4", "model.args.medn.motion_dim=8", "model.args.medn.emotion_dim=8",
                 "model.args.medn.fusion_dim=8"]
    assert main(["train", "--config", "medn_synth", *overrides, "--folds", "s03", "--out", str(run), "--quiet"]) == 0
    with open(data / "clips.csv", newline="") as f:
        truth = {r["clip_id"]: r for r in csv.DictReader(f)}
    return data, run / "folds" / "s03", truth


def test_a_video_with_onset_and_apex_gives_the_engines_prediction_of_its_prepared_clip(micro_run, tmp_path, capsys):
    data, fold, truth = micro_run
    preds = pd.read_csv(fold / "predictions.csv")  # the engine's test predictions, from the prepared clips
    predictor = Predictor.from_checkpoint(fold, device="cpu", calibrated=False)  # raw, as predictions.csv
    assert predictor.onset_apex.frames == "rise:4" and predictor.onset_apex.flow == "dis"
    emotion, aus = predictor.tasks
    for want in preds.to_dict("records"):
        r = truth[want["clip_id"]]
        video = data / "videos" / f"{r['clip_id']}.mp4"
        got = predictor.predict_paths([video], onset=int(r["onset"]), apex=int(r["apex"])).iloc[0]
        assert got.error == "" and got.frame == int(r["apex"]) and got.onset == int(r["onset"])
        assert got.apex_from == "given"
        for t in (emotion, aus):
            cols = [f"{t.name}_p_{x}" for x in t.labels]
            assert np.allclose([got[c] for c in cols], [want[c] for c in cols], atol=1e-4), (t.name, r["clip_id"])
        # AUs detected: the labels at p >= 0.5, as the report thresholds them
        assert got.aus_pred == ("+".join(x for x in aus.labels if got[f"aus_p_{x}"] >= 0.5) or "none")

    # the match is not loose: other frames as onset/apex (the crops and flow change) move the probabilities
    r = truth[preds.clip_id.iloc[0]]
    video = data / "videos" / f"{r['clip_id']}.mp4"
    shifted = predictor.predict_paths([video], onset=int(r["onset"]) + 2, apex=int(r["apex"]) + 4).iloc[0]
    cols = [f"{t.name}_p_{x}" for t in (emotion, aus) for x in t.labels]
    want = preds.iloc[0]
    assert np.abs(np.array([shifted[c] for c in cols]) - np.array([want[c] for c in cols])).max() > 1e-3

    # a new video written from a clip's frames (re-encoded, so a little lossy): the same probabilities within 0.02
    from unmask.data.video import iter_frames, write_video

    copy = tmp_path / "copy.mp4"
    write_video((rgb for _, rgb in iter_frames(data / "videos" / f"{r['clip_id']}.mp4")), copy, 100.0, crf=0)
    got = predictor.predict_paths([copy], onset=int(r["onset"]), apex=int(r["apex"])).iloc[0]
    assert got.error == "" and np.allclose([got[c] for c in cols], [want[c] for c in cols], atol=0.02)

    # the CLI: printed with every class's and AU's probability, and in the CSV
    out = tmp_path / "p.csv"
    video = data / "videos" / f"{r['clip_id']}.mp4"
    assert main(["predict", str(fold), str(video), "--onset", r["onset"], "--apex", r["apex"], "--out", str(out),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"onset {r['onset']}, apex {r['apex']} (given)" in err and "aus_p_" not in err
    assert all(f"{x} " in err for x in (*emotion.labels, *aus.labels))
    df = read_results(out)
    assert len(df) == 1 and {"onset", "apex_from", "emotion_p_happiness", "aus_p_AU12"} <= set(df.columns)
    want = preds[preds.clip_id == r["clip_id"]].iloc[0]
    assert df.emotion_pred.iloc[0] == emotion.labels[int(np.argmax([want[f"emotion_p_{x}"] for x in emotion.labels]))]


def test_the_apex_search_finds_the_synthetic_apex(micro_run, capsys):
    data, fold, truth = micro_run
    detector = create_detector("auto")
    errors = {cid: search_apex(data / "videos" / f"{cid}.mp4", int(r["onset"]), detector)[0] - int(r["apex"])
              for cid, r in truth.items()}
    # within two frames (20 ms at 100 fps) on most clips, never far: the apex is a plateau and the head sways
    assert sum(abs(e) <= 2 for e in errors.values()) >= 7 and max(map(abs, errors.values())) <= 10, errors
    assert np.median(np.abs(list(errors.values()))) <= 2, errors
    # the CLI without --onset/--apex: onset = the first frame, the apex searched from there
    cid = next(iter(truth))
    video = data / "videos" / f"{cid}.mp4"
    assert main(["predict", str(fold), str(video), "--no-progress"]) == 0
    out = capsys.readouterr()
    apex, score = search_apex(video, 0, detector)
    assert f"onset 0, apex {apex} (searched, score {score:.3f})" in out.err
    assert int(out.out.splitlines()[1].split()[1]) == apex  # the frame column


def test_bad_onset_apex_and_inputs_get_clear_messages(micro_run, tmp_path, capsys):
    data, fold, truth = micro_run
    cid, r = next(iter(truth.items()))
    video = str(data / "videos" / f"{cid}.mp4")
    assert main(["predict", str(fold), video, "--onset", "30", "--apex", "20", "--no-progress"]) == 2
    assert "--onset 30 --apex 20: the onset must come before the apex" in capsys.readouterr().err
    assert main(["predict", str(fold), video, "--apex", "-3", "--no-progress"]) == 2
    assert "--apex -3: a frame index is 0 or more" in capsys.readouterr().err
    n = int(r["frames"])
    assert main(["predict", str(fold), video, "--onset", "2", "--apex", str(n + 5), "--no-progress"]) == 1
    assert f"frame {n + 5} beyond the video's length ({n} frames" in capsys.readouterr().err
    assert main(["predict", str(fold), video, "--onset", str(n + 5), "--no-progress"]) == 1
    assert f"start frame {n + 5} beyond the video's length" in capsys.readouterr().err
    # a still image is no onset-to-apex clip
    import cv2

    from unmask.data.video import read_frames

    img = tmp_path / "still.png"
    cv2.imwrite(str(img), read_frames(video, [0])[0][:, :, ::-1])
    assert main(["predict", str(fold), str(img), "--no-progress"]) == 1
    assert "not a single image" in capsys.readouterr().err
    with pytest.raises(UnmaskError, match="needs frames sampled from onset to apex"):
        from unmask.data.onset_apex import OnsetApexInput

        OnsetApexInput.from_preprocess({"frames": "span:4", "flow": "dis", "input_size": [3, 32, 32]})


def test_the_web_page_analysis_shows_the_clip_reading(micro_run):
    """`unmask serve`'s analysis of a video with a MEDN checkpoint: one face card, at the searched apex."""
    from unmask.serve.analysis import Limits, analyse

    data, fold, truth = micro_run
    predictor = Predictor.from_checkpoint(fold, device="cpu")
    video = data / "videos" / f"{next(iter(truth))}.mp4"
    result = analyse(predictor, video, video.name, Limits(), lambda *_: None)
    apex, _ = search_apex(video, 0, predictor.detector)
    (face,) = result.data["faces"]
    assert face["frame"] == apex and set(face["tasks"]) == {"emotion", "aus"}
    assert abs(sum(face["tasks"]["emotion"]["p"].values()) - 1) < 1e-5


def test_a_frame_folder_as_a_sequence_with_the_sheets_frame_numbers(micro_run, tmp_path, capsys):
    import cv2

    from unmask.data.video import iter_frames

    data, fold, truth = micro_run
    preds = pd.read_csv(fold / "predictions.csv")
    r = truth[preds.clip_id.iloc[0]]
    video = data / "videos" / f"{r['clip_id']}.mp4"
    folder = tmp_path / "sub01" / "EP01_01"  # a release's layout: images numbered from 100, lossless
    folder.mkdir(parents=True)
    for i, rgb in iter_frames(video):
        cv2.imwrite(str(folder / f"img{100 + i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    predictor = Predictor.from_checkpoint(fold, device="cpu")
    onset, apex = int(r["onset"]), int(r["apex"])
    want = predictor.predict_paths([video], onset=onset, apex=apex).iloc[0]
    got = predictor.predict_paths([folder], onset=100 + onset, apex=100 + apex, sequences=True).iloc[0]
    assert got.error == "" and got.frame == apex and got.onset == onset  # positions in the folder
    cols = [c for c in want.index if "_p_" in c]
    assert np.allclose(got[cols].astype(float), want[cols].astype(float), atol=1e-6)
    # without --sequence a folder is a set of images, each one a still (not what this model reads)
    stills = predictor.predict_paths([folder])
    assert len(stills) > 1 and (stills.kind == "image").all()
    # through the CLI, and a number the folder lacks named with its range
    out = tmp_path / "p.csv"
    assert main(["predict", str(fold), str(folder), "--sequence", "--onset", str(100 + onset), "--apex",
                 str(100 + apex), "--out", str(out), "--no-progress"]) == 0
    assert np.allclose(pd.read_csv(out).iloc[0][cols].astype(float), want[cols].astype(float), atol=1e-6)
    capsys.readouterr()
    assert main(["predict", str(fold), str(folder), "--sequence", "--onset", "5", "--apex", str(100 + apex),
                 "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert f"--onset 5: no image numbered 5 in {folder}" in err and "Traceback" not in err
