import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from unmask.eval.metrics import _from_confusion, bootstrap_ci, confusion, scores, summarize_task


def _preds(n, acc, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 6, n)
    return t, np.where(rng.random(n) < acc, t, rng.integers(0, 6, n))


@pytest.mark.parametrize("seed", range(5))
def test_confusion_formulas_match_sklearn(seed):
    t, p = _preds(50, 0.4, seed)
    t[t == 5] = 4  # a class absent from the truth: UAR averages only present classes
    ref = {"accuracy": accuracy_score(t, p), "f1": f1_score(t, p, labels=range(6), average="macro", zero_division=0),
           "uar": balanced_accuracy_score(t, p)}
    for got in (scores(t, p), _from_confusion(np.array(confusion(t, p)))):
        for k in ref:
            assert got[k] == pytest.approx(ref[k])


def test_bootstrap_ci_covers_estimate_and_narrows_with_n():
    small, large = _preds(60, 0.5), _preds(2000, 0.5)
    ci_s, ci_l = bootstrap_ci(*small), bootstrap_ci(*large)
    for (t, p), ci in ((small, ci_s), (large, ci_l)):
        s = scores(t, p)
        for m in s:
            assert ci[m][0] <= s[m] <= ci[m][1]
    assert ci_l["accuracy"][1] - ci_l["accuracy"][0] < (ci_s["accuracy"][1] - ci_s["accuracy"][0]) / 3


def test_summary_pools_folds_and_reports_mean_std():
    folds = {"a": _preds(30, 0.9, 1), "b": _preds(30, 0.1, 2)}
    s = summarize_task(folds)
    t = np.concatenate([folds["a"][0], folds["b"][0]])
    p = np.concatenate([folds["a"][1], folds["b"][1]])
    assert s["pooled"]["accuracy"] == pytest.approx(accuracy_score(t, p))
    per = [accuracy_score(*folds[k]) for k in "ab"]
    assert s["fold_mean"]["accuracy"] == pytest.approx(np.mean(per))
    assert s["fold_std"]["accuracy"] == pytest.approx(np.std(per, ddof=1))
    assert s["n"] == 60 and np.array(s["confusion"]).sum() == 60
    assert s["p_above_chance"] < 0.05
    chance = summarize_task({"a": _preds(300, 0.0, 3)})
    assert chance["p_above_chance"] > 0.01
