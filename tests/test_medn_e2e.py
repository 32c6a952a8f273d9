"""A CASME II-layout release through `unmask import casme2`, `prepare --flow`, `unmask train` with MEDN, and back
from the checkpoint: the rebuilt model predicts what training wrote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from micro_fixtures import write_casme2
from unmask.checkpoint import load_checkpoint
from unmask.cli import main
from unmask.data.datasets import load_frames
from unmask.data.prepare import PreparedSet
from unmask.data.transforms import Preprocess
from unmask.predict import Predictor


def test_casme2_fixture_imports_prepares_flow_and_trains_medn(tmp_path, capsys):
    sheet, frames = write_casme2(tmp_path)
    manifest = tmp_path / "casme2.csv"
    assert main(["import", "casme2", str(sheet), "--frames", str(frames), "--out", str(manifest)]) == 0
    assert "fixed:" in capsys.readouterr().out
    prep = tmp_path / "prep"
    assert main(["prepare", str(manifest), "--out", str(prep), "--detector", "none", "--size", "32",
                 "--frames", "rise:4", "--flow", "dis", "--no-progress"]) == 0
    run = tmp_path / "run"
    overrides = [f"data.prepared={prep}", "model.backbone_args.img_size=32", "optim.epochs=2", "optim.batch_size=4",
                 "model.args.medn.motion_dim=8", "model.args.medn.emotion_dim=8", "model.args.medn.fusion_dim=8",
                 "optim.monitor=emotion_acc"]
    # one fold of the LOSO over the sheet's integer subjects (sub01, sub02, sub03) keeps the test short
    assert main(["train", "--config", "medn_synth", *overrides, "--folds", "sub03", "--out", str(run), "--quiet"]) == 0
    report = (run / "report.md").read_text()
    assert "| emotion | uar |" in report and "aus (action units)" in report

    # the checkpoint alone rebuilds the model, which predicts the test clips as training did
    fold = run / "folds" / "sub03"
    model, ckpt = load_checkpoint(fold)
    assert model.encodes_clips and [t.name for t in model.tasks] == ["emotion", "aus"]
    preds = pd.read_csv(fold / "predictions.csv")
    ps = PreparedSet(prep)
    data = load_frames(ps, "clip_flow", masked_only=False, size=32)
    idx = [data.clip_ids.index(c) for c in preds.clip_id]
    cfg = model.data_config
    x = Preprocess(cfg["mean"], cfg["std"])(data.images[idx], train=False)
    with torch.no_grad():
        probs = model(x)["emotion_logits"].softmax(-1).numpy()
    want = preds[[f"emotion_p_{c}" for c in model.tasks[0].labels]].to_numpy()
    assert np.allclose(probs, want, atol=1e-4)
    # on raw media the predictor reads onset-to-apex clips of videos (tests/test_medn_predict.py); a still image
    # is refused with a row saying why
    predictor = Predictor.from_checkpoint(fold, device="cpu")
    assert predictor.onset_apex.frames == "rise:4" and predictor.onset_apex.flow == "dis"
    image = next(frames.rglob("*.jpg"))
    assert "not a single image" in predictor.predict_paths([image]).error.iloc[0]
