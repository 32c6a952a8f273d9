"""Compare two runs on the same clips: side-by-side metrics and paired tests, for every task both runs predict.

Single-label tasks: exact McNemar test on the clips one run gets right and the other wrong, and a paired
bootstrap of the accuracy difference. Multi-label tasks: a paired bootstrap of the macro-F1 difference.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from unmask.errors import UnmaskError
from unmask.eval.metrics import METRICS, MULTI_METRICS, multilabel_scores, scores
from unmask.eval.report import load_predictions, run_tasks, task_arrays
from unmask.io import atomic_write_json


def _tasks(run) -> dict:
    metas = {p.parent.name: json.loads(p.read_text()) for p in sorted(Path(run).glob("folds/*/metrics.json"))}
    return {t.name: t for t in run_tasks(metas)}


def compare_runs(run_a: str | Path, run_b: str | Path, *, n_boot: int = 2000, seed: int = 0,
                 clips: Iterable[str] | None = None) -> dict:
    """``clips``: compare on these clip ids only (a subset such as the ambiguous pairs of a synthetic set)."""
    a, b = load_predictions(run_a), load_predictions(run_b)
    if clips is not None:
        wanted = set(clips)
        a, b = a[a.clip_id.isin(wanted)], b[b.clip_id.isin(wanted)]
    n_a = a.clip_id.nunique()
    common = sorted(set(a.clip_id) & set(b.clip_id))
    if not common:
        raise UnmaskError(f"{run_a} and {run_b} have no test clips in common; nothing to compare")
    a, b = a.set_index("clip_id").loc[common], b.set_index("clip_id").loc[common]
    result = {"run_a": str(run_a), "run_b": str(run_b), "n_common": len(common),
              "only_a": int(n_a - len(common)), "tasks": {}}
    tasks_a, tasks_b = _tasks(run_a), _tasks(run_b)
    for name, task in tasks_a.items():
        if name not in tasks_b or tasks_b[name].labels != task.labels:
            continue
        y, pa = task_arrays(task, a)
        _, pb = task_arrays(task, b)
        if task.kind == "multi":
            idx = np.random.default_rng(seed).integers(0, len(y), size=(200, len(y)))
            result["tasks"][name] = _compare_multilabel(task, y, pa, pb, idx)
            continue
        known = y >= 0
        y, pa, pb, k = y[known], pa[known], pb[known], task.num_classes
        ca, cb = pa == y, pb == y
        sel = np.random.default_rng(seed).integers(0, len(y), size=(n_boot, len(y)))  # paired resamples
        only_a, only_b = int((ca & ~cb).sum()), int((~ca & cb).sum())
        # exact McNemar: under H0 the discordant clips split 50/50
        p_mcnemar = float(binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
        diff = (ca[sel].mean(1) - cb[sel].mean(1))
        result["tasks"][name] = {
            "kind": "single", "a": scores(y, pa, k), "b": scores(y, pb, k),
            "a_only_correct": only_a, "b_only_correct": only_b, "mcnemar_p": p_mcnemar,
            "accuracy_diff": float(ca.mean() - cb.mean()),
            "accuracy_diff_ci95": [float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))],
        }
    return result


def _compare_multilabel(task, y, pa, pb, idx) -> dict:
    a, b = multilabel_scores(y, pa, task.labels), multilabel_scores(y, pb, task.labels)
    diff = np.array([multilabel_scores(y[i], pa[i], task.labels)["macro_f1"]
                     - multilabel_scores(y[i], pb[i], task.labels)["macro_f1"] for i in idx])
    return {"kind": "multi", "a": a, "b": b, "macro_f1_diff": a["macro_f1"] - b["macro_f1"],
            "macro_f1_diff_ci95": [float(np.nanpercentile(diff, 2.5)), float(np.nanpercentile(diff, 97.5))]}


def format_comparison(res: dict) -> str:
    lines = [f"A: {res['run_a']}", f"B: {res['run_b']}", f"{res['n_common']} test clips in common", ""]
    for task, t in res["tasks"].items():
        lines.append(f"{task:<16}A        B      A-B")
        if t["kind"] == "multi":
            for m in MULTI_METRICS:
                lines.append(f"  {m:<14}{t['a'][m]:.3f}    {t['b'][m]:.3f}   {t['a'][m] - t['b'][m]:+.3f}")
            lo, hi = t["macro_f1_diff_ci95"]
            lines += [f"  macro-F1 A-B 95% CI [{lo:+.3f}, {hi:+.3f}] (paired bootstrap, 200 resamples)", ""]
            continue
        for m in METRICS:
            lines.append(f"  {m:<14}{t['a'][m]:.3f}    {t['b'][m]:.3f}   {t['a'][m] - t['b'][m]:+.3f}")
        lo, hi = t["accuracy_diff_ci95"]
        verdict = "a real difference" if t["mcnemar_p"] < 0.05 and (lo > 0 or hi < 0) else "within noise"
        lines.append(f"  clips right only in A: {t['a_only_correct']}, only in B: {t['b_only_correct']}; "
                     f"McNemar exact p = {t['mcnemar_p']:.3g}; accuracy A-B 95% CI [{lo:+.3f}, {hi:+.3f}] "
                     f"(paired bootstrap) -> {verdict}")
        lines.append("")
    return "\n".join(lines)


def write_comparison(res: dict, path: str | Path) -> None:
    atomic_write_json(path, res)
