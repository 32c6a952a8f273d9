"""Run summaries and reports: ``summary.json`` (machine-readable) and ``report.md`` with figures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from unmask.errors import UnmaskError
from unmask.eval.metrics import METRICS, MULTI_METRICS, summarize_task
from unmask.io import atomic_write_json, atomic_write_text
from unmask.tasks import Task, tasks_from_list, tasks_to_list

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


def write_summary(run: str | Path, folds: Sequence[Any] | None = None) -> dict:
    """``folds``: the run's folds (each with a ``name``), to name the ones missing from the summary."""
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
    tasks = run_tasks(fold_meta)
    summary["task_defs"] = tasks_to_list(tasks)
    for task in tasks:
        per_fold = {name: task_arrays(task, g) for name, g in preds.groupby("fold", sort=True)}
        summary["tasks"][task.name] = summarize_task(task, per_fold)
    groups = subject_groups(preds)
    if groups is not None:
        summary["groups"] = {}
        for name, rows in preds.groupby(groups, sort=True):
            summary["groups"][name] = {
                "subjects": int(rows.subject.nunique()), "clips": int(len(rows)),
                "tasks": {t.name: summarize_task(t, {f: task_arrays(t, g) for f, g in rows.groupby("fold", sort=True)})
                          for t in tasks if t.kind == "single"}}
    atomic_write_json(run / "summary.json", summary)
    return summary


def subject_groups(preds: pd.DataFrame) -> pd.Series | None:
    """Each prediction's subject group: the subject's prefix before its first ``_`` (``casme2_sub01`` -> casme2),
    when every subject has one and at least two groups of two or more subjects each come out: the source datasets
    of a composite such as ``unmask import megc2019`` writes it. None otherwise (no per-group table)."""
    subjects = preds.subject.astype(str)
    if not subjects.str.contains("_", regex=False).all():
        return None
    prefix = subjects.str.split("_", n=1).str[0]
    sizes = subjects.groupby(prefix).nunique()
    if len(sizes) < 2 or (sizes < 2).any():
        return None
    return prefix.rename("group")


def run_tasks(fold_meta: dict) -> tuple[Task, ...]:
    """The tasks a run's folds predicted (recorded in every fold's metrics.json)."""
    for meta in fold_meta.values():
        if "tasks" in meta:
            return tasks_from_list(meta["tasks"])
    raise UnmaskError("the run's folds do not record their tasks (made by an older unmask: train it again)")


def task_arrays(task: Task, preds: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A task's columns of predictions.csv -> (labels, predictions): class indices (-1 = not annotated) for a
    single-label task; 0/1 labels (NaN = not annotated) and probabilities ``[n, L]`` for a multi-label one."""
    probs = preds[[f"{task.name}_p_{label}" for label in task.labels]].to_numpy(dtype=float)
    text = preds[task.name].fillna("").astype(str)
    if task.kind == "single":
        index = {label: i for i, label in enumerate(task.labels)}
        return text.map(lambda v: index.get(v, -1)).to_numpy(), probs.argmax(1)
    return np.array([task.target(task.parse(v)) for v in text], dtype=float).reshape(len(text), -1), probs


def task_title(summary: dict, name: str) -> str:
    titles = {t["name"]: t.get("title") or t["name"] for t in summary.get("task_defs", [])}
    title = titles.get(name, name)
    return name if title == name else f"{name} ({title})"


def _fmt(s: dict, m: str) -> str:
    lo, hi = s["ci95"][m]
    return f"{s['pooled'][m]:.3f} [{lo:.3f}, {hi:.3f}] | {s['fold_mean'][m]:.3f} ± {s['fold_std'][m]:.3f}"


def metrics_table(summary: dict) -> str:
    lines = ["| task | metric | pooled [95% CI] | mean ± std over folds |", "|---|---|---|---|"]
    for task, s in summary["tasks"].items():
        for m in (METRICS if s.get("kind", "single") == "single" else MULTI_METRICS):
            lines.append(f"| {task_title(summary, task)} | {m} | {_fmt(s, m)} |")
    return "\n".join(lines)


def _multilabel_table(name: str, s: dict) -> str:
    lines = [f"Per label ({name}): F1 at 0.5 and ROC AUC, pooled; positives among the test clips.", "",
             "| label | positives | F1 | AUC |", "|---|---|---|---|"]
    for label in s["labels"]:
        f1, auc = s["pooled"]["per_label_f1"].get(label), s["pooled"]["per_label_auc"].get(label)
        lines.append(f"| {label} | {s['positives'].get(label, 0)} | {'' if f1 is None else f'{f1:.3f}'} | "
                     f"{'' if auc is None else f'{auc:.3f}'} |")
    return "\n".join(lines)


def write_report(run: str | Path, summary: dict | None = None) -> Path:
    run = Path(run)
    summary = summary or json.loads((run / "summary.json").read_text())
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    fig_dir = run / "figures"
    fig_dir.mkdir(exist_ok=True)
    figs = _figures(run, summary, fig_dir)
    m, p, loss = cfg["model"], cfg["protocol"], cfg["loss"]
    lines = [f"# unmask run report: {run.name}", ""]
    if summary["optimistic"]:
        lines += [OPTIMISTIC_WARNING, ""]
    model_args = m.get("args", {}).get(m["name"], {})
    loss_args = loss.get("args", {})
    lines += [
        f"Model `{m['name']}` ({_kv(model_args)}) on backbone `{m['backbone']}` ({m['mode']}, weights: "
        f"{m['weights'] or 'random init'}); paradigm `{cfg['data']['paradigm']}`; loss `{loss['name']}` "
        f"({'; '.join(f'{k}: {_kv(v)}' for k, v in loss_args.items()) or 'defaults'}); protocol `{p['name']}` "
        f"with validation `{p['validation']}`; {summary['n_folds']} fold(s), {summary['n_clips']} test clips.", ""]
    if summary.get("missing_folds"):
        lines += [f"Unfinished folds (not in these numbers): {', '.join(summary['missing_folds'])}.", ""]
    lines += ["## Metrics", "", metrics_table(summary), ""]
    for task, s in summary["tasks"].items():
        if s.get("kind", "single") == "single":
            acc, chance = s["pooled"]["accuracy"], s["chance"]
            lines.append(f"- {task_title(summary, task)}: accuracy {acc:.3f} vs chance {chance:.3f} "
                         f"({(acc - chance) * 100:+.1f} points; one-sided binomial p = {s['p_above_chance']:.2g}).")
    if _absent_note(summary):
        lines.append(_absent_note(summary))
    lines.append("")
    for task, s in summary["tasks"].items():
        if s.get("kind") == "multi":
            lines += [_multilabel_table(task_title(summary, task), s), ""]
    if summary.get("groups"):
        lines += ["## Per subject group", "", _groups_table(summary), ""]
    lines += ["## Per fold", "", _per_fold_table(summary), ""]
    from unmask.eval.calibration_report import calibration_section  # an addition: ECE before/after temperatures

    lines += calibration_section(run, tasks_from_list(summary.get("task_defs", [])), fig_dir)
    lines += ["## Figures", ""] + [f"![{name}](figures/{f.name})" for name, f in figs] + [""]
    return atomic_write_text(run / "report.md", "\n".join(lines))


def _absent_note(summary: dict) -> str:
    """The report's line on classes no test clip has (macro averages and chance leave them out), or ""."""
    absent = {task_title(summary, t): s["absent_labels"] for t, s in summary["tasks"].items()
              if s.get("absent_labels")}
    if not absent:
        return ""
    return ("- Macro-F1, UAR and chance are over the classes present among the test clips; no test clip has "
            + "; ".join(f"{t}: {', '.join(labels)}" for t, labels in absent.items()) + ".")


def _kv(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "defaults"


def _headline(s: dict) -> tuple[str, str]:
    """The metric a task is read by: accuracy (single-label) or macro-F1 (multi-label)."""
    return ("accuracy", "acc") if s.get("kind", "single") == "single" else ("macro_f1", "macro F1")


def _groups_table(summary: dict) -> str:
    """Pooled F1 (UF1) and UAR per subject group (the source datasets of a composite) with bootstrap CIs."""
    tasks = [t for t, s in summary["tasks"].items() if s.get("kind", "single") == "single"]
    lines = ["The test predictions pooled over folds, split by the subjects' prefix (for a composite from "
             "`unmask import megc2019`: the source dataset); macro F1 = UF1, UAR = mean per-class recall "
             "[95% bootstrap CI].", "",
             "| group | subjects | clips | " + " | ".join(f"{t} UF1 | {t} UAR" for t in tasks) + " |",
             "|" + "---|" * (3 + 2 * len(tasks))]
    for name, g in summary["groups"].items():
        cells = [name, str(g["subjects"]), str(g["clips"])]
        for t in tasks:
            s = g["tasks"][t]
            cells += [f"{s['pooled'][m]:.3f} [{s['ci95'][m][0]:.3f}, {s['ci95'][m][1]:.3f}]" for m in ("f1", "uar")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _per_fold_table(summary: dict) -> str:
    tasks = list(summary["tasks"])
    head = "| fold | best epoch | " + " | ".join(
        f"{t} acc | {t} F1" if summary["tasks"][t].get("kind", "single") == "single" else f"{t} macro F1 | {t} macro AUC"
        for t in tasks) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(tasks))]
    folds = sorted(next(iter(summary["tasks"].values()))["per_fold"]) if tasks else []
    for f in folds:
        cells = [f, str(summary["best_epochs"].get(f, ""))]
        for t in tasks:
            s = summary["tasks"][t]["per_fold"][f]
            keys = ("accuracy", "f1") if summary["tasks"][t].get("kind", "single") == "single" else MULTI_METRICS
            cells += [f"{s[k]:.3f}" for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figures(run: Path, summary: dict, fig_dir: Path) -> list[tuple[str, Path]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    tasks = list(summary["tasks"])
    single = [t for t in tasks if summary["tasks"][t].get("kind", "single") == "single"]
    if single:  # confusion matrices, row-normalised
        fig, axes = plt.subplots(1, len(single), figsize=(5.2 * len(single), 4.6), squeeze=False)
        for ax, task in zip(axes[0], single):
            s = summary["tasks"][task]
            labels = s["labels"]
            cm = np.array(s["confusion"], dtype=float)
            norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            for i in range(len(labels)):
                for j in range(len(labels)):
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if norm[i, j] > 0.5 else "black")
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
            ax.set_yticks(range(len(labels)), labels)
            ax.set_xlabel("predicted")
            ax.set_ylabel("actual")
            ax.set_title(f"{task_title(summary, task)}\npooled accuracy {s['pooled']['accuracy']:.3f}")
        fig.tight_layout()
        out.append(("confusion matrices", _save(fig, fig_dir / "confusion.png")))
    logs = {p.parent.name: pd.read_csv(p) for p in sorted((run / "folds").glob("*/log.csv")) if p.stat().st_size}
    logs = {k: v for k, v in logs.items() if len(v)}
    if logs:  # learning curves
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
        first = summary["tasks"][tasks[0]] if tasks else {}
        metric, short = _headline(first)
        for name, df in logs.items():
            a1.plot(df["epoch"], df["loss"], alpha=0.6, lw=1)
            col = f"val_{tasks[0]}_{'acc' if metric == 'accuracy' else 'f1'}" if tasks else None
            if col in df:
                a2.plot(df["epoch"], df[col], alpha=0.6, lw=1, label=name)
        a1.set(xlabel="epoch", ylabel="training loss", title="training loss per fold")
        a2.set(xlabel="epoch", ylabel=f"validation {short} ({tasks[0] if tasks else ''})",
               title=f"validation {short} per fold")
        if "chance" in first:
            a2.axhline(first["chance"], color="grey", ls="--", lw=1)
        if len(logs) <= 12:
            a2.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        out.append(("learning curves", _save(fig, fig_dir / "learning_curves.png")))
    if tasks:  # per-subject accuracy
        folds = sorted(summary["tasks"][tasks[0]]["per_fold"])
        fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(folds) + 2), 3.6))
        width = 0.8 / len(tasks)
        for k, task in enumerate(tasks):
            metric, short = _headline(summary["tasks"][task])
            values = [summary["tasks"][task]["per_fold"][f][metric] for f in folds]
            ax.bar(np.arange(len(folds)) + k * width, values, width, label=f"{task_title(summary, task)} {short}")
            if "chance" in summary["tasks"][task]:
                ax.axhline(summary["tasks"][task]["chance"], color=f"C{k}", ls="--", lw=1)
        ax.set_xticks(np.arange(len(folds)) + width * (len(tasks) - 1) / 2, folds, rotation=60)
        ax.set(ylabel="score (dashed: chance)", title="score per test fold", ylim=(0, 1))
        ax.legend(fontsize=8)
        fig.tight_layout()
        out.append(("per-fold accuracy", _save(fig, fig_dir / "per_fold_accuracy.png")))
    return out


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
