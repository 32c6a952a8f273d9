"""The report's calibration section: expected calibration error and a reliability diagram per task, before and
after the temperatures each fold fitted on its validation subjects, pooled over the test folds.

Reads each finished fold's ``predictions.csv`` (the raw probabilities, as the metrics tables read them) and
``calibration.json`` (:mod:`unmask.train.trust`); writes ``calibration.csv`` (one row per task: clips, ECE
and NLL raw and calibrated) and ``figures/reliability_<task>.png``. The metrics tables above it are untouched:
temperature scaling keeps every prediction. A fold without ``calibration.json`` (a run from before it was
written) is left out, and the section says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unmask.calibration import ece, nll, reliability_curve, scale_probabilities
from unmask.tasks import Task


def _targets(task: Task, cells: pd.Series) -> np.ndarray:
    if task.kind == "single":
        return np.array([task.labels.index(c) if c in task.labels else -1 for c in cells], dtype=int)
    out = np.full((len(cells), len(task.labels)), np.nan)
    for i, c in enumerate(cells):
        parsed = task.parse(c) if c else None
        if parsed is not None:
            out[i] = [float(label in parsed) for label in task.labels]
    return out


def pooled_test(run: Path, tasks: tuple[Task, ...]) -> tuple[dict, list[str]]:
    """``{task: (raw p, calibrated p, targets)}`` over the folds with a calibration record, and the folds left out."""
    parts: dict[str, list] = {t.name: [] for t in tasks}
    missing = []
    for pred in sorted((run / "folds").glob("*/predictions.csv")):
        fold = pred.parent
        if not (fold / "metrics.json").is_file():
            continue
        cal_path = fold / "calibration.json"
        cal = json.loads(cal_path.read_text()) if cal_path.is_file() else {}
        if not cal.get("known"):
            missing.append(fold.name)
            continue
        df = pd.read_csv(pred, keep_default_na=False, dtype={t.name: str for t in tasks})
        for t in tasks:
            p = df[[f"{t.name}_p_{x}" for x in t.labels]].to_numpy(float)
            temp = cal["temperature"].get(t.name, 1.0)
            parts[t.name].append((p, scale_probabilities(t.kind, p, temp), _targets(t, df[t.name])))
    pooled = {name: tuple(np.concatenate(a) for a in zip(*chunks)) for name, chunks in parts.items() if chunks}
    return pooled, missing


def calibration_section(run: str | Path, tasks: tuple[Task, ...], fig_dir: Path) -> list[str]:
    """Markdown lines of the section (empty when no fold has a calibration record)."""
    run = Path(run)
    pooled, missing = pooled_test(run, tasks)
    if not pooled:
        return []
    rows: list[dict[str, Any]] = []
    for t in tasks:
        if t.name not in pooled:
            continue
        raw, cal, y = pooled[t.name]
        rows.append({"task": t.name, "clips": int(len(y)), "ece_raw": ece(t.kind, raw, y),
                     "ece_calibrated": ece(t.kind, cal, y), "nll_raw": nll(t.kind, raw, y),
                     "nll_calibrated": nll(t.kind, cal, y)})
        _reliability_figure(t, raw, cal, y, fig_dir / f"reliability_{t.name}.png")
    table = pd.DataFrame(rows)
    table.to_csv(run / "calibration.csv", index=False, float_format="%.4f")
    lines = ["## Calibration (test folds)", "",
             "Temperature scaling per task, fitted on each fold's validation subjects (docs/trust.md); the "
             "predictions, and so the tables above, are unchanged. ECE: 15 equal-width confidence bins "
             "(multi-label: every labelled clip x label).", "",
             "| task | test clips | ECE raw | ECE calibrated | NLL raw | NLL calibrated |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['clips']} | {r['ece_raw']:.4f} | {r['ece_calibrated']:.4f} | "
                     f"{r['nll_raw']:.4f} | {r['nll_calibrated']:.4f} |")
    worse = [r["task"] for r in rows if r["ece_calibrated"] > r["ece_raw"]]
    lines.append("")
    if worse:
        lines.append(f"Calibration did not lower the test ECE of: {', '.join(worse)} (numbers above). The temperatures "
                     "are fitted on the validation subjects that early stopping also chose the epoch on, so a model "
                     "looks more accurate there than on new people and a fitted T < 1 sharpens it (docs/trust.md).")
    if missing:
        lines.append(f"Folds without a calibration record (trained before it was written), left out: "
                     f"{', '.join(missing)}.")
    lines += [""] + [f"![reliability {r['task']}](figures/reliability_{r['task']}.png)" for r in rows] + [""]
    return lines


def _reliability_figure(task: Task, raw: np.ndarray, cal: np.ndarray, y: np.ndarray, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--", label="perfect")
    for p, name, colour in ((raw, "raw", "tab:red"), (cal, "calibrated", "tab:blue")):
        c = reliability_curve(task.kind, p, y)
        ax.plot(c["confidence"], c["accuracy"], marker="o", color=colour,
                label=f"{name} (ECE {ece(task.kind, p, y):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence" if task.kind == "single" else "predicted probability")
    ax.set_ylabel("accuracy" if task.kind == "single" else "observed frequency")
    ax.set_title(f"{task.title}: reliability on the test folds", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["calibration_section", "pooled_test"]
