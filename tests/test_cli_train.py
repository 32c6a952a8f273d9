"""The training CLI end to end on a tiny synthetic set: train, report, compare, resume, parallel folds."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import pandas as pd
import pytest

from unmask.cli import main

TINY = ["model.backbone=tiny_resnet", "model.weights=null", "model.backbone_args.img_size=32",
        "model.args.dsid.adapter_dim=32", "model.args.single_stream.adapter_dim=32",
        "model.args.dsid.branch_dim=16", "optim.epochs=2", "optim.patience=2", "optim.batch_size=16",
        "augment.rotation=0", "features.views=2", "features.precision=fp32"]


def _train(prepared, out, *extra, config="dsid_synth"):
    return main(["train", "--config", config, f"data.prepared={prepared}", *TINY, *extra, "--out", str(out),
                 "--quiet"])


@pytest.fixture(scope="module")
def run_a(tiny_synth, tmp_path_factory):
    _, prepared = tiny_synth
    out = tmp_path_factory.mktemp("runs") / "a"
    assert _train(prepared, out, "model.mode=frozen") == 0
    return out


def test_train_writes_a_complete_run_directory(run_a, tiny_synth):
    folds = sorted(p.name for p in (run_a / "folds").iterdir())
    assert folds == ["s01", "s02", "s03"]
    for f in folds:
        for name in ("metrics.json", "predictions.csv", "log.csv", "checkpoint.pt"):
            assert (run_a / "folds" / f / name).is_file()
        m = json.loads((run_a / "folds" / f / "metrics.json").read_text())
        # leakage: the fold's test subject is neither in its training nor its validation subjects
        assert m["test"] == [f] and f not in m["train"] and f not in m["val"] and not set(m["train"]) & set(m["val"])
        preds = pd.read_csv(run_a / "folds" / f / "predictions.csv")
        assert set(preds.subject) == {f} and len(preds) == 30
    summary = json.loads((run_a / "summary.json").read_text())
    assert summary["n_clips"] == 90 and set(summary["tasks"]) == {"true", "disguised"}
    pooled = pd.concat(pd.read_csv(run_a / "folds" / f / "predictions.csv") for f in folds)
    assert summary["tasks"]["true"]["pooled"]["accuracy"] == pytest.approx((pooled.true == pooled.true_pred).mean())
    report = (run_a / "report.md").read_text()
    assert "vs chance 0.167" in report and "Warning: optimistic" not in report
    for fig in ("confusion.png", "learning_curves.png", "per_fold_accuracy.png"):
        assert (run_a / "figures" / fig).stat().st_size > 1000
    assert (run_a / "config.yaml").is_file() and json.loads((run_a / "run.json").read_text())["unmask_version"]
    # the frozen backbone's features were extracted once into the prepared set's cache
    assert len(list((tiny_synth[1] / "features").glob("*.pt"))) >= 1


def test_checkpoint_rebuilds_the_model_alone(run_a, tiny_synth):
    import numpy as np
    import torch

    from unmask.checkpoint import load_checkpoint
    from unmask.data.datasets import load_frames
    from unmask.data.prepare import PreparedSet
    from unmask.data.transforms import Preprocess

    model, ckpt = load_checkpoint(run_a / "folds" / "s02" / "checkpoint.pt")
    assert ckpt["tasks"][0]["labels"][3] == "happiness" and ckpt["preprocess"]["paradigm"] == "apex"
    assert [t["name"] for t in ckpt["tasks"]] == ["true", "disguised"]
    data = load_frames(PreparedSet(tiny_synth[1]), "apex", size=ckpt["preprocess"]["input_size"][-1])
    idx = data.subset(["s02"])
    pre = Preprocess(ckpt["preprocess"]["mean"], ckpt["preprocess"]["std"])
    with torch.no_grad():
        probs = model(pre(data.images[idx], train=False))["true_logits"].softmax(-1).numpy()
    saved = pd.read_csv(run_a / "folds" / "s02" / "predictions.csv")
    cols = [c for c in saved if c.startswith("true_p_")]
    # the rebuilt model (random-init frozen backbone included) on images == the run's cached-feature path
    np.testing.assert_allclose(probs, saved[cols].to_numpy(), atol=1e-4)


def test_rerun_refuses_and_resume_recomputes_nothing(run_a, tiny_synth, capsys):
    _, prepared = tiny_synth
    assert _train(prepared, run_a, "model.mode=frozen") == 2
    assert "--resume" in capsys.readouterr().err
    assert _train(prepared, run_a, "model.mode=frozen", "loss.args.dsid.alpha=0.1") == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "loss.args.dsid.alpha: 0.5 -> 0.1" in err  # the differing key is listed
    mtimes = {p: p.stat().st_mtime_ns for p in run_a.glob("folds/*/metrics.json")}
    assert _train(prepared, run_a, "model.mode=frozen", "--resume") == 0
    assert {p: p.stat().st_mtime_ns for p in run_a.glob("folds/*/metrics.json")} == mtimes


def test_subset_of_folds_then_the_rest_and_parallel_jobs_agree(run_a, tiny_synth, tmp_path):
    _, prepared = tiny_synth
    out = tmp_path / "b"
    assert _train(prepared, out, "model.mode=frozen", "--folds", "s01") == 0
    assert [p.parent.name for p in out.glob("folds/*/metrics.json")] == ["s01"]
    assert json.loads((out / "summary.json").read_text())["n_clips"] == 30
    assert _train(prepared, out, "model.mode=frozen", "--resume", "--jobs", "2") == 0
    for f in ("s01", "s02", "s03"):  # fold seeds do not depend on order or parallelism
        a = json.loads((run_a / "folds" / f / "metrics.json").read_text())
        b = json.loads((out / "folds" / f / "metrics.json").read_text())
        assert a["true"] == b["true"] and a["disguised"] == b["disguised"]


def test_compare_and_report_commands(run_a, tiny_synth, tmp_path, capsys):
    _, prepared = tiny_synth
    other = tmp_path / "c"
    assert _train(prepared, other, "model.mode=finetune", "model.name=single_stream", "model.args.single_stream.task=disguised") == 0
    capsys.readouterr()
    assert main(["compare", str(run_a), str(other), "--json", str(tmp_path / "cmp.json")]) == 0
    text = capsys.readouterr().out
    assert "90 test clips in common" in text and "McNemar" in text
    cmp = json.loads((tmp_path / "cmp.json").read_text())
    assert set(cmp["tasks"]) == {"disguised"}  # the single-stream run predicts only the disguise
    t = cmp["tasks"]["disguised"]
    assert t["a_only_correct"] + t["b_only_correct"] <= 90 and 0 <= t["mcnemar_p"] <= 1
    # compare scores the runs as their own summaries do (it once scored label names against ids: F1 0.000)
    for key, run in (("a", run_a), ("b", other)):
        pooled = json.loads((run / "summary.json").read_text())["tasks"]["disguised"]["pooled"]
        assert t[key] == pytest.approx(pooled) and t[key]["f1"] > 0
    (run_a / "report.md").unlink()
    assert main(["report", str(run_a)]) == 0 and (run_a / "report.md").is_file()
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no finished folds" in capsys.readouterr().err


def test_optimistic_validation_is_flagged_in_the_report(tiny_synth, tmp_path):
    _, prepared = tiny_synth
    out = tmp_path / "opt"
    assert _train(prepared, out, "model.mode=frozen", "protocol.validation=test_subject", "--folds", "s03") == 0
    m = json.loads((out / "folds" / "s03" / "metrics.json").read_text())
    assert m["val"] == m["test"] == ["s03"] and m["optimistic"]
    assert "Warning: optimistic numbers" in (out / "report.md").read_text()
    assert json.loads((out / "summary.json").read_text())["optimistic"] is True


def test_jobs_below_one_is_a_clean_error_before_any_work(tiny_synth, tmp_path, capsys):
    _, prepared = tiny_synth
    assert _train(prepared, tmp_path / "j0", "model.mode=frozen", "--jobs", "0") == 2
    assert "--jobs must be at least 1 (got 0)" in capsys.readouterr().err
    assert not (tmp_path / "j0").exists()  # nothing written, nothing extracted
