"""The result table of ``unmask predict``: its columns and dtypes, the per-video summary, and writing / reading it
(``.csv`` or ``.json``) with the same dtypes back."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from unmask.errors import UnmaskError

if TYPE_CHECKING:
    from unmask.tasks import Task

BASE_COLUMNS = ["source", "kind", "frame", "time_s", "face", "track", "x", "y", "w", "h", "det_score",
                "face_found", "apex", "apex_score"]
INT_COLUMNS = ("frame", "face", "track", "x", "y", "w", "h")  # nullable integers (empty when no face)
TEXT_COLUMNS = ("source", "kind", "error", "apex_from", "trained_on", "note")  # and every <task>_pred
BOOL_COLUMNS = ("face_found", "apex", "unlike_training", "calibrated")  # unlike_training, calibrated: unmask.trust
ONSET_APEX_COLUMNS = ["onset", "apex_from"]  # an onset-to-apex clip model's rows: its onset; apex given | search


def is_text_column(name: str) -> bool:
    return name in TEXT_COLUMNS or name.endswith("_pred")


def task_columns(tasks: Iterable[Task]) -> list[str]:
    """The result columns of ``tasks``: ``<task>_pred``, ``<task>_conf``, ``<task>_p_<label>`` each."""
    return [c for t in tasks for c in (f"{t.name}_pred", f"{t.name}_conf", *(f"{t.name}_p_{x}" for x in t.labels))]


def to_frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """Rows -> DataFrame with stable columns and dtypes (nullable ints, booleans, empty error strings)."""
    df = pd.DataFrame(rows, columns=columns)
    extra = [c for r in rows for c in r if c not in columns]
    if extra:
        raise ValueError(f"unexpected result columns {sorted(set(extra))}")
    return normalize_dtypes(df)


def normalize_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    for c in [c for c in (*INT_COLUMNS, "onset") if c in df.columns]:
        df[c] = pd.to_numeric(df[c]).astype("Int64")
    for c in [c for c in BOOL_COLUMNS if c in df.columns or c in ("face_found", "apex")]:
        df[c] = df[c].map(lambda v: bool(v) if isinstance(v, (bool, np.bool_, int, float)) and v == v else False)
        df[c] = df[c].astype(bool)
    for c in df.columns:
        if c in ("time_s", "det_score", "apex_score", "ood_score") or c.endswith("_conf") or "_p_" in c:
            df[c] = pd.to_numeric(df[c]).astype(float)
    for c in [c for c in df.columns if is_text_column(c)]:
        df[c] = df[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return df


def video_summary(df: pd.DataFrame, tasks: Sequence[Task]) -> pd.DataFrame:
    """One row per video: each task's class probabilities averaged over the sampled frames with a face (a clip
    model's rows carry their window's prediction, so each window counts for its frames), the overall label
    (single-label: the most probable class; multi-label: the labels above 0.5) and its confidence, and how many
    face rows went in. ``--apex-search`` rows are left out (they repeat one frame)."""
    rows = []
    faces = df[(df.kind == "video") & (df.error == "") & df.face_found & ~df.apex]
    for src, g in faces.groupby("source", sort=False):
        row = {"source": src, "faces": len(g)}
        for t in tasks:
            cols = [f"{t.name}_p_{x}" for x in t.labels]
            if not set(cols) <= set(g.columns) or g[cols].isna().all().all():
                continue
            mean = g[cols].astype(float).mean()
            if t.kind == "single":
                best = int(np.argmax(mean.to_numpy()))
                row[f"{t.name}_pred"], row[f"{t.name}_conf"] = t.labels[best], float(mean.iloc[best])
            else:
                row[f"{t.name}_pred"] = "+".join(x for x, v in zip(t.labels, mean) if v > 0.5)
                row[f"{t.name}_conf"] = float(mean.max())
            row.update({c: float(v) for c, v in mean.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def write_results(df: pd.DataFrame, path: str | Path) -> Path:
    """``.csv`` or ``.json`` (records); :func:`read_results` reads either back with the same dtypes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        df.to_json(path, orient="records", indent=1)
    elif path.suffix.lower() == ".csv":
        df.to_csv(path, index=False)
    else:
        raise UnmaskError(f"--out {path}: expected a .csv or .json file")
    return path


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a file written by :func:`write_results` (or ``unmask predict --out``) with the result dtypes."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        df = pd.read_json(path, orient="records", dtype=False)
    else:
        # only the numeric columns treat "" as missing: an empty error or prediction stays an empty string
        header = pd.read_csv(path, nrows=0).columns
        numeric = [c for c in header if not is_text_column(c)]
        df = pd.read_csv(path, keep_default_na=False, na_values={c: ["", "NaN", "nan"] for c in numeric},
                         dtype={c: str for c in header if is_text_column(c)})
    return normalize_dtypes(df)
