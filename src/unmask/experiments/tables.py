"""The paper's tables as data: ``configs/experiments/<table>.yaml`` -> :class:`Table`.

A table file says which runs fill which cells; it holds no code path of its own::

    title: "Table II: ablation"
    paper_table: II                 # which table of the paper (unmask.experiments.paper) it reproduces
    tasks: [ter, der]               # result columns: TER (true emotion) and/or DER (disguised emotion)
    overrides: [data.paradigm=apex] # applied to every row (key=value, as on the command line)
    sweep: {key: loss.args.dsid.alpha, label: "α"}   # optional: rows are points of a sweep -> a plot
    quick_datasets: [default]       # synthetic presets the --quick version runs on (see quick.yaml)
    rows:
      - label: ViT
        paper: ViT                  # row of the paper's table, or omitted for rows the paper lacks
        runs:                       # one list of overrides per task...
          ter: [model.name=single_stream, model.args.single_stream.task=true]
          der: [model.name=single_stream, model.args.single_stream.task=disguised]
      - label: DSID
        paper: DSID
        run: [model.name=dsid]      # ...or one run that predicts every task

``common.yaml`` (base config, default weights per backbone) and ``quick.yaml`` (the synthetic quick mode)
live in the same folder and are not tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from unmask.config import read_yaml_mapping
from unmask.errors import UnmaskError
from unmask.experiments.paper import PAPER, paper_row

EXPERIMENTS_DIR = Path(__file__).resolve().parents[1] / "configs" / "experiments"
NOT_TABLES = ("common", "quick")  # settings files beside the tables
TASKS = ("ter", "der")  # table columns; the run's summary calls them "true" and "disguised"
SUMMARY_TASK = {"ter": "true", "der": "disguised"}
ESTIMATORS = ("paper", "biased", "unbiased")


@dataclass(frozen=True)
class Row:
    label: str
    runs: dict[str, tuple[str, ...]]  # task -> overrides of the run that predicts it
    paper: dict[str, float] = field(default_factory=dict)  # metric key (ter_acc, ...) -> paper's value
    paper_label: str | None = None  # the row as printed in the paper
    x: float | None = None  # sweep value
    series: str = "ours"  # sweep line the row belongs to (estimator rows get their own)
    dataset: str = "default"  # quick mode: synthetic preset


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    paper_table: str
    tasks: tuple[str, ...]
    rows: tuple[Row, ...]
    overrides: tuple[str, ...] = ()
    sweep: dict | None = None  # {"key": "loss.args.dsid.alpha", "label": "α"}
    quick_datasets: tuple[str, ...] = ("default",)
    notes: str = ""


def list_tables() -> list[str]:
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml") if p.stem not in NOT_TABLES)


def read_settings(name: str) -> dict:
    """``common.yaml`` or ``quick.yaml`` as a mapping."""
    return read_yaml_mapping(EXPERIMENTS_DIR / f"{name}.yaml")


def _overrides(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        raise UnmaskError(f"{where}: expected a list of key=value strings, got {value!r}")
    return tuple(value)


def load_table(name: str) -> Table:
    """The table ``name``; an unknown name is an error listing the tables."""
    if name not in list_tables():
        raise UnmaskError(f"unknown table {name!r}; tables: {', '.join(list_tables())}, all")
    path = EXPERIMENTS_DIR / f"{name}.yaml"
    data = read_yaml_mapping(path)
    paper_table = str(data.get("paper_table", ""))
    if paper_table not in PAPER:
        raise UnmaskError(f"{path}: paper_table must be one of {', '.join(PAPER)}, got {paper_table!r}")
    tasks = tuple(data.get("tasks") or TASKS)
    if not set(tasks) <= set(TASKS):
        raise UnmaskError(f"{path}: tasks must be among {', '.join(TASKS)}, got {list(tasks)}")
    rows = []
    for i, r in enumerate(data.get("rows") or []):
        where = f"{path} row {i + 1}"
        if "run" in r:
            runs = {t: _overrides(r["run"], where) for t in tasks}
        else:
            runs = {t: _overrides((r.get("runs") or {}).get(t), where) for t in tasks}
            missing = [t for t in tasks if t not in (r.get("runs") or {})]
            if missing:
                raise UnmaskError(f"{where}: no run for task(s) {', '.join(missing)} (give `run:` or `runs:`)")
        paper = paper_row(f"{paper_table}/{r['paper']}") if r.get("paper") is not None else {}
        rows.append(Row(label=str(r["label"]), runs=runs, paper=paper,
                        paper_label=str(r["paper"]) if r.get("paper") is not None else None,
                        x=float(r["x"]) if r.get("x") is not None else None))
    if not rows:
        raise UnmaskError(f"{path}: no rows")
    sweep = data.get("sweep")
    if sweep is not None and any(r.x is None for r in rows):
        raise UnmaskError(f"{path}: a sweep table needs `x:` on every row")
    return Table(name=name, title=str(data.get("title", name)), paper_table=paper_table, tasks=tasks,
                 rows=tuple(rows), overrides=_overrides(data.get("overrides"), str(path)), sweep=sweep,
                 quick_datasets=tuple(data.get("quick_datasets") or ("default",)),
                 notes=str(data.get("notes", "")).strip())


def parse_estimators(values: list[str] | None) -> list[str]:
    """``["paper,biased", "unbiased"]`` -> ``["paper", "biased", "unbiased"]`` (order kept, no repeats)."""
    out: list[str] = []
    for v in values or []:
        for e in (s.strip() for s in v.split(",")):
            if e and e not in ESTIMATORS:
                raise UnmaskError(f"unknown HSIC estimator {e!r}; choose from {', '.join(ESTIMATORS)}")
            if e and e not in out:
                out.append(e)
    return out


def with_estimators(table: Table, estimators: list[str], hsic_loss_of: Callable[[Any], str | None]) -> Table:
    """Add, after each HSIC row, one copy per estimator with ``loss.args.<loss>.estimator=<e>`` (label "X
    (estimator=e)").

    ``hsic_loss_of(row)`` names the row's objective when it has an HSIC term, else None (the runner knows: an
    objective with an HSIC estimator and a positive weight). The copies carry no paper numbers: the paper reports
    one estimator (eq. 2-4), and which one it really used is the open question these rows measure.
    """
    if not estimators:
        return table
    rows: list[Row] = []
    for row in table.rows:
        rows.append(row)
        loss = hsic_loss_of(row)
        if loss:
            for e in estimators:
                runs = {t: (*o, f"loss.args.{loss}.estimator={e}") for t, o in row.runs.items()}
                rows.append(replace(row, label=f"{row.label} (estimator={e})", runs=runs, paper={},
                                    paper_label=None, series=f"estimator={e}"))
    return replace(table, rows=tuple(rows))


def for_datasets(table: Table, datasets: tuple[str, ...]) -> Table:
    """One copy of every row per synthetic dataset (quick mode), labelled with the dataset when several."""
    if len(datasets) == 1:
        return replace(table, rows=tuple(replace(r, dataset=datasets[0]) for r in table.rows))
    rows = tuple(replace(r, dataset=d, label=f"{r.label} [synthetic {d}]") for d in datasets for r in table.rows)
    return replace(table, rows=rows)
