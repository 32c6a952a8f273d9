"""The page's share of :mod:`unmask.trust`: what the header says about the model and its peers, and what each
face's entry carries beside its bars (read from the same result rows as ``unmask predict``'s CSV and JSON)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unmask.predict import Predictor


def trust_info(predictor: Predictor) -> dict:
    """``/api/info`` fields: ``trust`` (provenance line, warning, calibration, the unlike-training score) and
    ``peers`` (name, what it was trained on)."""
    return {"trust": predictor.trust.summary(),
            "peers": [{"name": p.name, "labels": list(p.labels), "trained_on": p.trained_on} for p in predictor.peers]}


def face_trust(predictor: Predictor, row: dict) -> dict:
    """One face's ``unlike_training``, ``ood_score``, ``calibrated``, ``note`` and ``peers`` (``{name: {pred,
    conf, p}}``) as the page's JSON carries them."""
    score = row.get("ood_score")
    out: dict[str, Any] = {"unlike_training": bool(row.get("unlike_training")),
           "ood_score": None if score is None or (isinstance(score, float) and math.isnan(score)) else float(score),
           "calibrated": bool(row.get("calibrated")), "note": str(row.get("note") or ""), "peers": {}}
    for peer in predictor.peers:
        if row.get(f"{peer.name}_pred"):
            out["peers"][peer.name] = {"pred": str(row[f"{peer.name}_pred"]), "conf": float(row[f"{peer.name}_conf"]),
                                       "p": {x: float(row[f"{peer.name}_p_{x}"]) for x in peer.labels}}
    return out


__all__ = ["trust_info", "face_trust"]
