import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

from unmask.emotions import MFED_TASKS
from unmask.eval.metrics import _from_confusion, bootstrap_ci, confusion, multilabel_scores, scores, summarize_task
from unmask.tasks import Task

TRUE = MFED_TASKS[0]


def _preds(n, acc, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 6, n)
    return t, np.where(rng.random(n) < acc, t, rng.integers(0, 6, n))


@pytest.mark.parametrize("seed", range(5))
def test_confusion_formulas_match_sklearn(seed):
    t, p = _preds(50, 0.4, seed)
    t[t == 5] = 4  # a class absent from the truth: UAR averages only present classes
    present = sorted(set(t.tolist()))  # macro averages over the classes the truth has (module docstring)
    ref = {"accuracy": accuracy_score(t, p), "f1": f1_score(t, p, labels=present, average="macro", zero_division=0),
           "uar": balanced_accuracy_score(t, p)}
    mask = np.isin(np.arange(6), present)
    for got in (scores(t, p, 6), _from_confusion(np.array(confusion(t, p, 6)), mask)):
        for k in ref:
            assert got[k] == pytest.approx(ref[k])


def test_bootstrap_ci_covers_estimate_and_narrows_with_n():
    small, large = _preds(60, 0.5), _preds(2000, 0.5)
    ci_s, ci_l = bootstrap_ci(*small, 6), bootstrap_ci(*large, 6)
    for (t, p), ci in ((small, ci_s), (large, ci_l)):
        s = scores(t, p, 6)
        for m in s:
            assert ci[m][0] <= s[m] <= ci[m][1]
    assert ci_l["accuracy"][1] - ci_l["accuracy"][0] < (ci_s["accuracy"][1] - ci_s["accuracy"][0]) / 3


def test_summary_pools_folds_and_reports_mean_std():
    folds = {"a": _preds(30, 0.9, 1), "b": _preds(30, 0.1, 2)}
    s = summarize_task(TRUE, folds)
    t = np.concatenate([folds["a"][0], folds["b"][0]])
    p = np.concatenate([folds["a"][1], folds["b"][1]])
    assert s["pooled"]["accuracy"] == pytest.approx(accuracy_score(t, p))
    per = [accuracy_score(*folds[k]) for k in "ab"]
    assert s["fold_mean"]["accuracy"] == pytest.approx(np.mean(per))
    assert s["fold_std"]["accuracy"] == pytest.approx(np.std(per, ddof=1))
    assert s["n"] == 60 and np.array(s["confusion"]).sum() == 60
    assert s["p_above_chance"] < 0.05
    chance = summarize_task(TRUE, {"a": _preds(300, 0.0, 3)})
    assert chance["p_above_chance"] > 0.01


def test_label_space_comes_from_the_task():
    """Macro-F1 averages over the task's own classes (3 here), and unlabelled clips (-1) are left out."""
    three = Task("valence", "single", ("negative", "positive", "surprise"))
    t = np.array([0, 1, 2, 2, -1, -1])
    p = np.array([0, 1, 2, 1, 0, 0])
    s = summarize_task(three, {"a": (t, p)}, n_boot=50)
    assert s["n"] == 4 and s["pooled"]["accuracy"] == pytest.approx(0.75) and s["chance"] == pytest.approx(1 / 3)
    assert s["pooled"]["f1"] == pytest.approx(f1_score(t[:4], p[:4], labels=range(3), average="macro"))
    assert np.array(s["confusion"]).shape == (3, 3)


def test_multilabel_scores_per_label_and_masked():
    aus = Task("aus", "multi", ("AU4", "AU12", "AU26"))
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [np.nan] * 3, [0, 0, 0]], dtype=float)
    p = np.array([[0.9, 0.2, 0.1], [0.1, 0.8, 0.2], [0.7, 0.4, 0.3], [0.9, 0.9, 0.9], [0.2, 0.1, 0.6]])
    s = multilabel_scores(y, p, aus.labels)
    assert s["per_label_f1"]["AU4"] == pytest.approx(1.0)  # the unannotated row (all 0.9) does not count
    assert s["per_label_f1"]["AU12"] == pytest.approx(f1_score([0, 1, 1, 0], [0, 1, 0, 0]))
    assert "AU26" not in s["per_label_auc"]  # never positive: AUC undefined, left out of the macro average
    assert s["macro_auc"] == pytest.approx(np.mean([s["per_label_auc"]["AU4"], s["per_label_auc"]["AU12"]]))
    summary = summarize_task(aus, {"a": (y[:3], p[:3]), "b": (y[3:], p[3:])}, n_boot=20)
    assert summary["kind"] == "multi" and summary["positives"] == {"AU4": 2, "AU12": 2, "AU26": 0}


def test_multilabel_scores_by_columns_equal_the_per_label_computation():
    """Rows annotated for all labels or none take one scikit-learn call per metric; the numbers are each label's
    own binary F1 and AUC (independent computation here), single positive labels and never-positive ones included."""
    rng = np.random.default_rng(0)
    labels = tuple(f"AU{i}" for i in range(6))
    y = (rng.random((40, 6)) < 0.3).astype(float)
    y[:, 4] = 0  # never positive: F1 0, no AUC
    y[:, 5] = 0
    y[3, 5] = 1  # one positive
    y[[7, 11]] = np.nan  # clips of a dataset without AUs
    p = rng.random((40, 6))
    s = multilabel_scores(y, p, labels)
    keep = ~np.isnan(y[:, 0])
    for j, label in enumerate(labels):
        t, q = y[keep, j].astype(int), p[keep, j]
        assert s["per_label_f1"][label] == pytest.approx(f1_score(t, (q >= 0.5).astype(int), zero_division=0))
        if 0 < t.sum() < len(t):
            assert s["per_label_auc"][label] == pytest.approx(roc_auc_score(t, q))
        else:
            assert label not in s["per_label_auc"]
    assert s["macro_f1"] == pytest.approx(np.mean(list(s["per_label_f1"].values())))
    y[0, 2] = np.nan  # one cell missing: the per-label path, same figures for the other labels
    t = multilabel_scores(y, p, labels)
    assert t["per_label_f1"]["AU1"] == pytest.approx(s["per_label_f1"]["AU1"])


def test_an_absent_class_counts_in_no_macro_average_nor_in_chance():
    """DFEW's seven classes, no test clip of neutral (issue 21: macro-F1 was 6/7 of UAR, chance 1/7)."""
    task = Task("emotion", "single", ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"))
    rng = np.random.default_rng(0)
    present = [0, 1, 2, 3, 5, 6]
    t = np.repeat(present, 30)
    p = t.copy()
    wrong = rng.random(len(t)) < 0.1
    p[wrong] = rng.choice(present, wrong.sum())  # errors among the present classes ...
    p[:2] = 4  # ... and two clips answered with the absent class: still wrong answers
    s = summarize_task(task, {"f1": (t[:90], p[:90]), "f2": (t[90:], p[90:])})
    pooled = s["pooled"]
    assert s["absent_labels"] == ["neutral"]
    assert s["chance"] == pytest.approx(1 / 6)
    assert pooled["uar"] == pytest.approx(balanced_accuracy_score(t, p))
    assert pooled["f1"] == pytest.approx(f1_score(t, p, labels=present, average="macro"))
    assert pooled["f1"] > 0.85 and abs(pooled["f1"] - pooled["uar"]) < 0.05  # not 6/7 of it
    assert pooled["f1"] > f1_score(t, p, labels=range(7), average="macro", zero_division=0) + 0.1
    lo, hi = s["ci95"]["f1"]
    assert lo <= pooled["f1"] <= hi  # the bootstrap averages over the same classes as the estimate
    # each fold has only some of the classes: its F1 averages over its own
    assert s["per_fold"]["f2"]["f1"] == pytest.approx(
        f1_score(t[90:], p[90:], labels=sorted(set(t[90:].tolist())), average="macro", zero_division=0))


def test_report_names_the_absent_class(tmp_path):
    from unmask.eval.report import _absent_note

    summary = {"tasks": {"emotion": {"kind": "single", "absent_labels": ["neutral"]}}, "task_defs": []}
    assert "neutral" in _absent_note(summary) and "present" in _absent_note(summary)
    assert _absent_note({"tasks": {"emotion": {"kind": "single", "absent_labels": []}}, "task_defs": []}) == ""
