"""Compare two runs on the same clips: side-by-side metrics and paired tests (McNemar, paired bootstrap)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from unmask.errors import UnmaskError
from unmask.eval.metrics import METRICS, scores
from unmask.eval.report import load_predictions


def compare_runs(run_a: str | Path, run_b: str | Path, *, n_boot: int = 2000, seed: int = 0) -> dict:
    a, b = load_predictions(run_a), load_predictions(run_b)
    n_a = a.clip_id.nunique()
    common = sorted(set(a.clip_id) & set(b.clip_id))
    if not common:
        raise UnmaskError(f"{run_a} and {run_b} have no test clips in common; nothing to compare")
    a, b = a.set_index("clip_id").loc[common], b.set_index("clip_id").loc[common]
    result = {"run_a": str(run_a), "run_b": str(run_b), "n_common": len(common),
              "only_a": int(n_a - len(common)), "tasks": {}}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(common), size=(n_boot, len(common)))
    for task in ("true", "disguised"):
        if f"{task}_pred" not in a or f"{task}_pred" not in b:
            continue
        y = a[task].to_numpy()
        pa, pb = a[f"{task}_pred"].to_numpy(), b[f"{task}_pred"].to_numpy()
        ca, cb = pa == y, pb == y
        only_a, only_b = int((ca & ~cb).sum()), int((~ca & cb).sum())
        # exact McNemar: under H0 the discordant clips split 50/50
        p_mcnemar = float(binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
        diff = (ca[idx].mean(1) - cb[idx].mean(1))
        result["tasks"][task] = {
            "a": scores(y, pa), "b": scores(y, pb),
            "a_only_correct": only_a, "b_only_correct": only_b, "mcnemar_p": p_mcnemar,
            "accuracy_diff": float(ca.mean() - cb.mean()),
            "accuracy_diff_ci95": [float(np.percentile(diff, 2.5)), float(np.percentile(diff, 97.5))],
        }
    return result


def format_comparison(res: dict) -> str:
    lines = [f"A: {res['run_a']}", f"B: {res['run_b']}", f"{res['n_common']} test clips in common", ""]
    for task, t in res["tasks"].items():
        lines.append(f"{task} emotion      A        B      A-B")
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
    Path(path).write_text(json.dumps(res, indent=2))
