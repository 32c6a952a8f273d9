"""A dataset whose tasks are not DSID's trains end to end through the CLI on the general path.

The tiny synthetic set relabelled: ``valence`` (3 classes: negative / positive / surprise, from the shown
expression) and ``aus`` (multi-label over four action units of the shown expression's EMFACS prototype; a
third of the clips not annotated, as SMIC has no AU labels). A ``multitask`` model trains with AdamW and a
cosine schedule (the plain path), and the report, the checkpoint and ``predict`` follow the data's tasks.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json

import pandas as pd
import pytest

from unmask.cli import main

VALENCE = {"happiness": "positive", "surprise": "surprise"}  # everything else: negative
AUS = ("AU4", "AU6", "AU12", "AU26")


@pytest.fixture(scope="module")
def relabelled(tiny_synth, tmp_path_factory):
    from dataclasses import replace

    from unmask.data.manifest import read_manifest, write_manifest
    from unmask.synth.masked import PROTOTYPES
    from unmask.tasks import Task

    manifest, _ = tiny_synth
    m = read_manifest(manifest)
    tasks = (Task("valence", "single", ("negative", "positive", "surprise")),
             Task("aus", "multi", AUS, title="action units"))
    clips = []
    for i, c in enumerate(m.clips):
        shown = c.labels["disguised"]
        aus = tuple(a for a in AUS if f"AU{int(a[2:]):02d}" in PROTOTYPES[shown] or a in PROTOTYPES[shown])
        clips.append(replace(c, labels={"valence": VALENCE.get(shown, "negative"), "aus": None if i % 3 == 0 else aus},
                             congruent=False))
    root = tmp_path_factory.mktemp("relabelled")
    out = write_manifest(clips, root / "manifest.csv", tasks)
    from unmask.data.prepare import prepare

    prepare(out, root / "prepared", detector="annotated", size=64, clip_frames=2, progress=False)
    return root


def test_other_tasks_train_report_and_predict(relabelled, tmp_path, faces_dir, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", "dsid_synth", f"data.prepared={relabelled / 'prepared'}", "model.name=multitask",
                 "model.backbone=tiny_resnet", "model.weights=null", "model.backbone_args.img_size=32",
                 "model.args.multitask.adapter_dim=32", "optim.name=adamw", "optim.schedule=cosine",
                 "optim.warmup_epochs=1", "optim.epochs=3", "optim.patience=3", "optim.batch_size=16",
                 "features.views=1", "augment.rotation=0", "features.precision=fp32", "--out", str(run),
                 "--quiet"]) == 0
    m = json.loads((run / "folds" / "s01" / "metrics.json").read_text())
    assert [t["name"] for t in m["tasks"]] == ["valence", "aus"] and m["monitor"] == "valence_acc"
    assert set(m["valence"]) == {"accuracy", "f1", "uar"} and 0 <= m["aus"]["macro_f1"] <= 1
    assert set(m["aus"]["per_label_f1"]) <= set(AUS)
    log = pd.read_csv(run / "folds" / "s01" / "log.csv")
    # the objective's own terms are logged, one per task; the schedule warmed up then decayed the rate
    assert {"loss", "valence_ce", "aus_bce", "val_valence_acc", "val_aus_f1", "lr"} <= set(log.columns)
    assert log.lr.iloc[0] < log.lr.iloc[1] and log.lr.iloc[2] < log.lr.iloc[1]
    preds = pd.read_csv(run / "folds" / "s01" / "predictions.csv", keep_default_na=False)
    assert set(preds.valence) <= {"negative", "positive", "surprise"}
    assert [c for c in preds if c.startswith("aus_p_")] == [f"aus_p_{a}" for a in AUS]
    assert (preds.aus == "").sum() > 0  # clips without AU labels stay unlabelled, not "none"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["tasks"]["valence"]["labels"] == ["negative", "positive", "surprise"]
    assert summary["tasks"]["valence"]["chance"] == pytest.approx(1 / 3)
    assert summary["tasks"]["aus"]["n"] == summary["n_clips"] == 90  # unannotated cells are masked per label
    report = (run / "report.md").read_text()
    assert "valence | accuracy" in report and "aus (action units) | macro_f1" in report
    assert "| AU12 |" in report and "vs chance 0.333" in report
    # the checkpoint alone predicts the data's tasks on a new photo
    capsys.readouterr()
    out_csv = tmp_path / "p.csv"
    assert main(["predict", str(run / "folds" / "s01"), str(faces_dir / "single_face.jpg"), "--out", str(out_csv),
                 "--detector", "haar"]) == 0
    p = pd.read_csv(out_csv, keep_default_na=False)
    assert p.valence_pred.iloc[0] in ("negative", "positive", "surprise")
    probs = p[["valence_p_negative", "valence_p_positive", "valence_p_surprise"]].to_numpy()
    assert abs(probs.sum() - 1) < 1e-4 and "aus_p_AU26" in p and "true_pred" not in p
