"""A composite's report splits the pooled predictions by source dataset (the subjects' prefix), with UF1/UAR."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from unmask.eval.report import subject_groups, write_summary
from unmask.tasks import Task, tasks_to_list

EMO = Task("emotion", "single", ("negative", "positive", "surprise"))


def _run(tmp_path, subjects, seed=0):
    """A finished LOSO run's folders: one fold per subject, 6 clips each, noisy predictions."""
    rng = np.random.default_rng(seed)
    run = tmp_path / "run"
    for s in subjects:
        fold = run / "folds" / s
        fold.mkdir(parents=True)
        y = rng.integers(0, 3, 6)
        pred = np.where(rng.random(6) < 0.6, y, rng.integers(0, 3, 6))
        p = np.full((6, 3), 0.1)
        p[np.arange(6), pred] = 0.8
        df = pd.DataFrame({"clip_id": [f"{s}_c{i}" for i in range(6)], "subject": s,
                           "emotion": [EMO.labels[i] for i in y], "emotion_pred": [EMO.labels[i] for i in pred]})
        for k, label in enumerate(EMO.labels):
            df[f"emotion_p_{label}"] = p[:, k]
        df.to_csv(fold / "predictions.csv", index=False)
        (fold / "metrics.json").write_text(json.dumps({"tasks": tasks_to_list([EMO]), "best_epoch": 1}))
    return run


def test_a_composite_is_split_by_source_dataset_with_uf1_and_uar(tmp_path):
    subjects = ["casme2_sub01", "casme2_sub02", "samm_006", "samm_007", "smic_s1", "smic_s2"]
    summary = write_summary(_run(tmp_path, subjects))
    assert list(summary["groups"]) == ["casme2", "samm", "smic"]
    preds = pd.concat(pd.read_csv(tmp_path / "run" / "folds" / s / "predictions.csv") for s in subjects)
    for name, g in summary["groups"].items():
        rows = preds[preds.subject.str.startswith(name + "_")]
        assert (g["subjects"], g["clips"]) == (2, 12)
        s = g["tasks"]["emotion"]
        want_f1 = f1_score(rows.emotion, rows.emotion_pred, labels=list(EMO.labels), average="macro", zero_division=0)
        assert s["pooled"]["f1"] == pytest.approx(want_f1)
        assert s["pooled"]["uar"] == pytest.approx(balanced_accuracy_score(rows.emotion, rows.emotion_pred))
        lo, hi = s["ci95"]["uar"]
        assert lo <= s["pooled"]["uar"] <= hi
    # and the report shows them
    import yaml

    from unmask.config import Config
    from unmask.eval.report import write_report

    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(Config().to_dict()))
    text = write_report(tmp_path / "run", summary).read_text()
    assert "## Per subject group" in text
    g = summary["groups"]["samm"]["tasks"]["emotion"]
    assert f"| samm | 2 | 12 | {g['pooled']['f1']:.3f} [{g['ci95']['f1'][0]:.3f}, {g['ci95']['f1'][1]:.3f}] |" in text


def test_no_groups_without_a_composite_naming(tmp_path):
    assert "groups" not in write_summary(_run(tmp_path, ["s01", "s02", "s03"]))
    one = pd.DataFrame({"subject": ["set_1", "set_2", "set_3"]})  # DFEW's folds: one prefix, no split
    assert subject_groups(one) is None
    lone = pd.DataFrame({"subject": ["casme2_sub01", "casme2_sub02", "samm_006"]})  # a group of one subject
    assert subject_groups(lone) is None
