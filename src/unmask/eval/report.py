"""Run summaries and reports: ``summary.json`` (machine-readable) and ``report.md`` with figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from unmask.emotions import EMOTIONS
from unmask.errors import UnmaskError
from unmask.eval.metrics import METRICS, summarize_task

TASK_NAMES = {"true": "true emotion (TER)", "disguised": "disguised emotion (DER)"}
OPTIMISTIC_WARNING = ("**Warning: optimistic numbers.** Epochs were selected on the test subject "
                      "(protocol.validation=test_subject), which leaks test information into model selection "
                      "(Varanka et al., IEEE TAFFC 2024). Subject-independent validation is the default.")


def load_predictions(run: str | Path) -> pd.DataFrame:
    """All folds' test predictions of a run, one row per clip, with a ``fold`` column."""
    run = Path(run)
    frames = []
    for p in sorted((run / "folds").glob("*/predictions.csv")):
        if (p.parent / "metrics.json").is_file():
            df = pd.read_csv(p)
            df.insert(0, "fold", p.parent.name)
            frames.append(df)
    if not frames:
        raise UnmaskError(f"{run}: no finished folds (is it an unmask run directory?)")
    return pd.concat(frames, ignore_index=True)


def write_summary(run: str | Path, folds=None) -> dict:
    run = Path(run)
    preds = load_predictions(run)
    fold_meta = {p.parent.name: json.loads(p.read_text()) for p in sorted((run / "folds").glob("*/metrics.json"))}
    summary = {"run": str(run), "n_folds": len(fold_meta), "n_clips": int(len(preds)),
               "optimistic": any(m.get("optimistic") for m in fold_meta.values()),
               "expected_folds": [f.name for f in folds] if folds else None, "tasks": {},
               "best_epochs": {k: m["best_epoch"] for k, m in fold_meta.items()}}
    if folds:
        missing = [f.name for f in folds if f.name not in fold_meta]
        summary["missing_folds"] = missing
    for task in ("true", "disguised"):
        if f"{task}_pred" not in preds:
            continue
        idx = {e: i for i, e in enumerate(EMOTIONS)}
        per_fold = {name: (g[task].map(idx).to_numpy(), g[f"{task}_pred"].map(idx).to_numpy())
                    for name, g in preds.groupby("fold", sort=True)}
        summary["tasks"][task] = summarize_task(per_fold)
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _fmt(s: dict, m: str) -> str:
    lo, hi = s["ci95"][m]
    return f"{s['pooled'][m]:.3f} [{lo:.3f}, {hi:.3f}] | {s['fold_mean'][m]:.3f} ± {s['fold_std'][m]:.3f}"


def metrics_table(summary: dict) -> str:
    lines = ["| task | metric | pooled [95% CI] | mean ± std over folds |", "|---|---|---|---|"]
    for task, s in summary["tasks"].items():
        for m in METRICS:
            lines.append(f"| {TASK_NAMES[task]} | {m} | {_fmt(s, m)} |")
    return "\n".join(lines)


def write_report(run: str | Path, summary: dict | None = None) -> Path:
    run = Path(run)
    summary = summary or json.loads((run / "summary.json").read_text())
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    fig_dir = run / "figures"
    fig_dir.mkdir(exist_ok=True)
    figs = _figures(run, summary, fig_dir)
    m, p = cfg["model"], cfg["protocol"]
    lines = [f"# unmask run report: {run.name}", ""]
    if summary["optimistic"]:
        lines += [OPTIMISTIC_WARNING, ""]
    lines += [
        f"Model `{m['name']}` on backbone `{m['backbone']}` ({m['mode']}, weights: {m['weights'] or 'random init'}); "
        f"paradigm `{cfg['data']['paradigm']}`; loss alpha={cfg['loss']['alpha']}, beta={cfg['loss']['beta']}, "
        f"HSIC estimator `{cfg['loss']['estimator']}`; protocol `{p['name']}` with validation `{p['validation']}`; "
        f"{summary['n_folds']} fold(s), {summary['n_clips']} test clips.", ""]
    if summary.get("missing_folds"):
        lines += [f"Unfinished folds (not in these numbers): {', '.join(summary['missing_folds'])}.", ""]
    lines += ["## Metrics", "", metrics_table(summary), ""]
    for task, s in summary["tasks"].items():
        acc, chance = s["pooled"]["accuracy"], s["chance"]
        lines.append(f"- {TASK_NAMES[task]}: accuracy {acc:.3f} vs chance {chance:.3f} "
                     f"({(acc - chance) * 100:+.1f} points; one-sided binomial p = {s['p_above_chance']:.2g}).")
    lines += ["", "## Per fold", "", _per_fold_table(summary), ""]
    lines += ["## Figures", ""] + [f"![{name}](figures/{f.name})" for name, f in figs] + [""]
    path = run / "report.md"
    path.write_text("\n".join(lines))
    return path


def _per_fold_table(summary: dict) -> str:
    tasks = list(summary["tasks"])
    head = "| fold | best epoch | " + " | ".join(f"{t} acc | {t} F1" for t in tasks) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(tasks))]
    folds = sorted(next(iter(summary["tasks"].values()))["per_fold"]) if tasks else []
    for f in folds:
        cells = [f, str(summary["best_epochs"].get(f, ""))]
        for t in tasks:
            s = summary["tasks"][t]["per_fold"][f]
            cells += [f"{s['accuracy']:.3f}", f"{s['f1']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figures(run: Path, summary: dict, fig_dir: Path) -> list[tuple[str, Path]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    tasks = list(summary["tasks"])
    if tasks:  # confusion matrices, row-normalised
        fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.6), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            cm = np.array(summary["tasks"][task]["confusion"], dtype=float)
            norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            for i in range(len(EMOTIONS)):
                for j in range(len(EMOTIONS)):
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if norm[i, j] > 0.5 else "black")
            ax.set_xticks(range(6), EMOTIONS, rotation=45, ha="right")
            ax.set_yticks(range(6), EMOTIONS)
            ax.set_xlabel("predicted")
            ax.set_ylabel("actual")
            ax.set_title(f"{TASK_NAMES[task]}\npooled accuracy {summary['tasks'][task]['pooled']['accuracy']:.3f}")
        fig.tight_layout()
        out.append(("confusion matrices", _save(fig, fig_dir / "confusion.png")))
    logs = {p.parent.name: pd.read_csv(p) for p in sorted((run / "folds").glob("*/log.csv")) if p.stat().st_size}
    logs = {k: v for k, v in logs.items() if len(v)}
    if logs:  # learning curves
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
        for name, df in logs.items():
            a1.plot(df["epoch"], df["loss"], alpha=0.6, lw=1)
            col = "val_true_acc" if "val_true_acc" in df else "val_disguised_acc"
            a2.plot(df["epoch"], df[col], alpha=0.6, lw=1, label=name)
        a1.set(xlabel="epoch", ylabel="training loss", title="training loss per fold")
        a2.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy per fold")
        a2.axhline(1 / 6, color="grey", ls="--", lw=1)
        if len(logs) <= 12:
            a2.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        out.append(("learning curves", _save(fig, fig_dir / "learning_curves.png")))
    if tasks:  # per-subject accuracy
        folds = sorted(summary["tasks"][tasks[0]]["per_fold"])
        fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(folds) + 2), 3.6))
        width = 0.8 / len(tasks)
        for k, task in enumerate(tasks):
            acc = [summary["tasks"][task]["per_fold"][f]["accuracy"] for f in folds]
            ax.bar(np.arange(len(folds)) + k * width, acc, width, label=TASK_NAMES[task])
        ax.axhline(1 / 6, color="grey", ls="--", lw=1, label="chance")
        ax.set_xticks(np.arange(len(folds)) + width * (len(tasks) - 1) / 2, folds, rotation=60)
        ax.set(ylabel="accuracy", title="accuracy per test fold", ylim=(0, 1))
        ax.legend(fontsize=8)
        fig.tight_layout()
        out.append(("per-fold accuracy", _save(fig, fig_dir / "per_fold_accuracy.png")))
    return out


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
