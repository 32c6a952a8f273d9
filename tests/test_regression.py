"""The generalised engine gives what the DSID-only engine gave: same per-fold metrics, same probabilities.

How the reference was produced: ``tests/data/make_regression_reference.py`` was run once on the pre-refactor
code (commit c3e31af, before tasks/heads/losses came from the data and the model) and wrote
``tests/data/regression_reference.json``: for each run below, per fold, the best epoch, the test metrics and
every test clip's probabilities (5 decimals), on the session's tiny synthetic set (3 subjects, seed 0, 64 px
crops), torch threads 1. The zero-shot reference is the old model's forward on the apex crops (the old engine
could not run a model without a trainable head). This test runs the same settings through today's CLI.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unmask.cli import main

REFERENCE = json.loads((Path(__file__).parent / "data" / "regression_reference.json").read_text())
COMMON = ["model.weights=null", "model.backbone_args.img_size=32", "optim.epochs=3", "optim.patience=3",
          "optim.batch_size=16", "features.views=2", "features.precision=fp32", "runtime.threads=1"]
DSID = ["model.name=dsid", "model.backbone=tiny_resnet", "model.args.dsid.adapter_dim=32",
        "model.args.dsid.branch_dim=16"]
RUNS = {  # the reference's runs in today's configuration keys
    "dsid_frozen": DSID,
    "dsid_clip_paradigm": DSID + ["data.paradigm=clip"],
    "single_stream_disguised": ["model.name=single_stream", "model.backbone=tiny_vit",
                                "model.args.single_stream.task=disguised", "model.args.single_stream.adapter_dim=32"],
    "clip_linear_probe": ["model.name=clip_linear_probe", "model.backbone=tiny_clip_vit"],
    "dsid_finetune": DSID + ["model.mode=finetune", "optim.epochs=2"],
    "clip_zero_shot": ["model.name=clip_zero_shot", "model.backbone=tiny_clip_vit"],
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from unmask.data.prepare import prepare
    from unmask.synth.masked import SynthConfig, generate

    root = tmp_path_factory.mktemp("regression")
    manifest = generate(root / "synth", SynthConfig(subjects=3, seed=0, width=160, height=120), progress=False)
    prepare(manifest, root / "prepared", detector="annotated", size=64, clip_frames=4, progress=False)
    return root / "prepared"


@pytest.mark.parametrize("name", list(RUNS))
def test_same_results_as_the_dsid_only_engine(name, prepared, tmp_path):
    out = tmp_path / name
    assert main(["train", "--config", "dsid_synth", f"data.prepared={prepared}", *COMMON, *RUNS[name],
                 "--out", str(out), "--quiet"]) == 0
    ref = REFERENCE[name]
    if name == "clip_zero_shot":  # every fold's test clips, against the model's forward on all clips
        expected = pd.DataFrame(ref["probs"], index=ref["clip_ids"])
        for f in sorted((out / "folds").iterdir()):
            p = pd.read_csv(f / "predictions.csv").set_index("clip_id")
            for task in ("true", "disguised"):  # zero-shot gives both tasks the same logits
                got = p[[f"{task}_p_{e}" for e in ("anger", "disgust", "fear", "happiness", "sadness", "surprise")]]
                np.testing.assert_allclose(got.to_numpy(), expected.loc[p.index].to_numpy(), atol=2e-5)
        return
    for fold, r in ref["folds"].items():
        m = json.loads((out / "folds" / fold / "metrics.json").read_text())
        p = pd.read_csv(out / "folds" / fold / "predictions.csv")
        assert p.clip_id.tolist() == r["clip_ids"]
        assert (m["best_epoch"], m["epochs_run"]) == (r["best_epoch"], r["epochs_run"])
        for task, scores in r["metrics"].items():
            assert m[task] == pytest.approx(scores, abs=1e-9), (fold, task)
        for col, values in r["probs"].items():
            np.testing.assert_allclose(p[col].to_numpy(), values, atol=2e-5, err_msg=f"{fold} {col}")
