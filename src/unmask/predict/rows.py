"""Rows out: each task's prediction written into a row, and the rows as the result table.

The one place a prediction's columns are decided: :func:`result_columns` lists them (the table's fixed
columns, the onset-to-apex ones where the model reads such clips, each task's, each peer's, ``error``) and
:func:`fill_tasks` writes a model pass into rows. A new column that every front end shows is one edit here;
the table's dtypes, per-video summary and files are :mod:`unmask.results`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from unmask.results import BASE_COLUMNS, ONSET_APEX_COLUMNS, task_columns, to_frame
from unmask.tasks import Task
from unmask.trust import TRUST_COLUMNS, Trust

Row = dict[str, Any]


def error_row(base: Mapping[str, Any], error: str, **fields: Any) -> Row:
    """The one row of an input that could not be read (no face, ``error`` saying why)."""
    return dict(base, **{"frame": -1, "face": -1, "track": -1, **fields, "face_found": False, "error": error})


def time_of(index: int, t: float | None, fps: float) -> float:
    """A frame's time in seconds (4 decimals): its timestamp, else index / fps, else NaN."""
    return round(t, 4) if t is not None else round(index / fps, 4) if fps else math.nan


def fill_tasks(groups: Sequence[Sequence[Row]], out: Mapping[str, np.ndarray], tasks: Sequence[Task],
               features: dict[int, np.ndarray] | None = None, trust: Trust | None = None) -> None:
    """Model output ``out`` (``{task: [N, C] probabilities, "features": [N, D]}``) into rows: group ``j`` (the
    rows one model input stands for, e.g. a window's frames) all get input ``j``'s ``<task>_pred``,
    ``<task>_conf`` and ``<task>_p_<label>``; ``features`` collects ``id(row)`` -> feature for the apex search."""
    for j, rows in enumerate(groups):
        for row in rows:
            for task in tasks:
                p = out[task.name][j]
                pred = task.predicted(p)
                row[f"{task.name}_pred"] = pred if task.kind == "single" else task.format(pred)
                row[f"{task.name}_conf"] = float(p.max())
                row.update({f"{task.name}_p_{x}": float(v) for x, v in zip(task.labels, p)})
            if trust is not None:  # the unlike-training score and flag, provenance, warnings (unmask.trust)
                trust.fill(row, float(out["ood"][j]))
            if features is not None:
                features[id(row)] = out["features"][j]


def result_columns(tasks: Sequence[Task], *, onset_apex: bool = False, peers: Sequence[Any] = (),
                   trust: bool = False) -> list[str]:
    """The result table's columns, in order (see :mod:`unmask.predict`)."""
    cols = BASE_COLUMNS + (ONSET_APEX_COLUMNS if onset_apex else []) + task_columns(tasks)
    cols += [c for peer in peers for c in peer.columns]
    return cols + (TRUST_COLUMNS if trust else []) + ["error"]


def result_frame(rows: list[Row], tasks: Sequence[Task], *, onset_apex: bool = False,
                 peers: Sequence[Any] = (), trust: Trust | None = None) -> pd.DataFrame:
    """Rows -> the result table (:func:`unmask.results.to_frame`: missing cells filled, dtypes fixed)."""
    if trust is not None:
        for row in rows:  # rows without a face (or an error) still say what the model was trained on
            if "trained_on" not in row:
                trust.fill(row, None)
    return to_frame(rows, result_columns(tasks, onset_apex=onset_apex, peers=peers, trust=trust is not None))
