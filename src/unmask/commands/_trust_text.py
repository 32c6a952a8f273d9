"""How ``unmask predict`` says what its readings are worth in the terminal (:mod:`unmask.trust`)."""

from __future__ import annotations

import pandas as pd

from unmask.trust import Trust


def trust_lines(trust: Trust) -> list[str]:
    """Lines for stderr before the readings: provenance, calibration, the unlike-training score, the warning."""
    s = trust.summary()
    lines = [s["trained_on"], s["calibration"], s["ood"]]
    if s["warning"]:
        lines.append(f"WARNING: this model was {s['warning']}")
    return lines


def table_flags(table: pd.DataFrame, trust: Trust) -> pd.DataFrame:
    """The printed table's trust columns: the score to 2 decimals, ``unlike`` where flagged, and the synthetic
    warning beside every reading (a face row)."""
    table = table.copy()
    face = table["ood_score"].notna() | table["unlike_training"].astype(bool)
    table["ood_score"] = table["ood_score"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    table["unlike_training"] = table["unlike_training"].map(lambda v: "UNLIKE" if v else "")
    table = table.rename(columns={"ood_score": "ood", "unlike_training": "vs_training"})
    if trust.warning:
        at = list(table.columns).index("error")
        table.insert(at, "warning", ["synthetic-trained" if f else "" for f in face])
    return table


def video_note(df: pd.DataFrame, source: str, trust: Trust) -> str:
    """`` [12 of 48 face rows unlike the training faces; trained only on synthetic faces ...]`` for a video."""
    rows = df[(df.source == source) & df.face_found & ~df.apex]
    parts = []
    if trust.scorer is not None and len(rows):
        parts.append(f"{int(rows.unlike_training.sum())} of {len(rows)} face rows unlike the training faces")
    if trust.warning:
        parts.append(f"WARNING: {trust.warning}")
    return f" [{'; '.join(parts)}]" if parts else ""


__all__ = ["trust_lines", "table_flags", "video_note"]
