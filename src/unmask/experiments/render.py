"""A reproduced table in the paper's layout: ``<table>.md``, ``<table>.csv`` and, for sweeps, ``<table>.png``.

Our cells read ``pooled ± fold std [95% CI]``: accuracy / macro-F1 pooled over every test clip of every fold,
the standard deviation of the per-fold values, and the percentile-bootstrap 95% CI of the pooled value
(unmask.eval.metrics). The paper's value sits in the column next to ours.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from unmask.experiments.tables import Table

TASK_TITLES = {"ter": "TER", "der": "DER"}
METRICS = (("accuracy", "acc"), ("f1", "F1"))
CHANCE = 1 / 6


def fmt_cell(r: dict | None, metric: str) -> str:
    if r is None:
        return "not run"
    m = r[metric]
    lo, hi = m["ci95"]
    return f"{m['pooled']:.3f} ± {m['fold_std']:.2f} [{lo:.2f}, {hi:.2f}]"


def _cells_by_row(results) -> dict:
    by_row: dict = defaultdict(dict)
    for cell, r in results:
        by_row[cell.row.label][cell.task] = (cell, r)
    return by_row


def write_table(table: Table, results: list[tuple[Any, Any]], out_dir: Path, *, notes: list[str] | None = None) -> dict[str, Path]:
    """``results``: ``[(Cell, cell_result or None), ...]`` in row order. Returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    by_row = _cells_by_row(results)
    rows = list(dict.fromkeys(cell.row.label for cell, _ in results))
    row_of = {cell.row.label: cell.row for cell, _ in results}
    paths = {"md": out_dir / f"{table.name}.md", "csv": out_dir / f"{table.name}.csv"}

    head = ["Method"]
    for t in table.tasks:
        for _, short in METRICS:
            head += [f"{TASK_TITLES[t]} {short} (ours)", f"{TASK_TITLES[t]} {short} (paper)"]
    lines = [f"# {table.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in rows:
        row, cells = row_of[label], [label]
        for t in table.tasks:
            _, r = by_row[label].get(t, (None, None))
            for metric, _ in METRICS:
                paper = row.paper.get(f"{t}_{'acc' if metric == 'accuracy' else 'f1'}")
                cells += [fmt_cell(r, metric), f"{paper:.4f}" if paper is not None else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    n_folds = sorted({r["n_folds"] for _, r in results if r})
    n_clips = sorted({r["n"] for _, r in results if r})
    lines += ["", f"Ours: pooled over all test clips ± std over folds [95% bootstrap CI]; "
              f"{'/'.join(map(str, n_folds)) or '?'} fold(s), {'/'.join(map(str, n_clips)) or '?'} test clips per "
              f"run. Paper: MFED, leave-one-subject-out (Table {table.paper_table}). Chance is {CHANCE:.3f}.", ""]
    for note in [table.notes, *(notes or [])]:
        if note:
            lines += [note, ""]
    if table.sweep:
        lines += [f"![{table.name}]({table.name}.png)", ""]
    lines += ["Runs (under the output folder; a run shared by several rows or tables is trained once):", ""]
    for label in rows:
        for t, (cell, _) in by_row[label].items():
            lines.append(f"- {label}, {TASK_TITLES[t]}: `runs/{cell.run_dir.name}`")
    paths["md"].write_text("\n".join(lines) + "\n")
    _write_csv(table, rows, row_of, by_row, paths["csv"])
    if table.sweep:
        paths["png"] = plot_sweep(table, rows, row_of, by_row, out_dir / f"{table.name}.png")
    return paths


def _write_csv(table, rows, row_of, by_row, path: Path) -> None:
    fields = ["table", "row", "paper_row", "dataset", "series", "x"]
    for t in table.tasks:
        for _, short in METRICS:
            k = f"{t}_{short.lower()}"
            fields += [k, f"{k}_fold_std", f"{k}_ci_lo", f"{k}_ci_hi", f"{k}_paper"]
        fields.append(f"{t}_run")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for label in rows:
            row = row_of[label]
            rec = {"table": table.name, "row": label, "paper_row": row.paper_label or "", "dataset": row.dataset,
                   "series": row.series, "x": "" if row.x is None else row.x}
            for t in table.tasks:
                cell, r = by_row[label].get(t, (None, None))
                for metric, short in METRICS:
                    k = f"{t}_{short.lower()}"
                    rec[f"{k}_paper"] = row.paper.get(k, "")
                    if r:
                        m = r[metric]
                        rec.update({k: f"{m['pooled']:.4f}", f"{k}_fold_std": f"{m['fold_std']:.4f}",
                                    f"{k}_ci_lo": f"{m['ci95'][0]:.4f}", f"{k}_ci_hi": f"{m['ci95'][1]:.4f}"})
                rec[f"{t}_run"] = f"runs/{cell.run_dir.name}" if cell else ""
            w.writerow(rec)


def plot_sweep(table: Table, rows: list[str], row_of: dict[str, Any], by_row: dict[str, Any], path: Path) -> Path:
    """Accuracy and F1 against the swept weight, TER and DER: ours (error bars: fold std) vs the paper."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = table.sweep.get("label", table.sweep["key"])
    fig, axes = plt.subplots(len(table.tasks), 2, figsize=(10, 3.6 * len(table.tasks)), squeeze=False)
    series: dict = defaultdict(list)
    for lab in rows:
        series[row_of[lab].series].append(lab)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, t in enumerate(table.tasks):
        for j, (metric, short) in enumerate(METRICS):
            ax = axes[i][j]
            paper = [(row_of[lab].x, row_of[lab].paper.get(f"{t}_{short.lower()}")) for lab in series.get("ours", [])]
            paper = [(x, y) for x, y in paper if y is not None]
            if paper:
                ax.plot(*zip(*paper), "s--", color="black", lw=1.2, ms=5, label="paper (MFED)")
            for k, (name, labs) in enumerate(series.items()):
                pts = [(row_of[lab].x, by_row[lab].get(t, (None, None))[1]) for lab in labs]
                pts = [(x, r[metric]) for x, r in pts if r]
                if not pts:
                    continue
                xs = [x for x, _ in pts]
                ys = [m["pooled"] for _, m in pts]
                err = [m["fold_std"] for _, m in pts]
                offset = (k - (len(series) - 1) / 2) * 0.012  # keep overlapping error bars apart
                ax.errorbar([x + offset for x in xs], ys, yerr=err, fmt="o-", capsize=3, lw=1.5,
                            color=colours[k % len(colours)], label=f"{'ours' if name == 'ours' else name} (± fold std)")
            ax.axhline(CHANCE, color="grey", ls=":", lw=1, label="chance (1/6)")
            ax.set(xlabel=label, ylabel=f"{TASK_TITLES[t]} {'accuracy' if metric == 'accuracy' else 'macro-F1'}",
                   title=f"{TASK_TITLES[t]} {'accuracy' if metric == 'accuracy' else 'F1'}")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(table.title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
