"""The DSID paper's reported numbers (seed 001, Tables I-V; MFED, LOSO, apex paradigm unless said).

Typed from the seed text, one entry per printed row; ``tests/test_reproduce.py`` checks every value against
the seed's TABLE blocks. The experiment YAMLs refer to these rows by ``TABLE/row`` (e.g. ``II/DSID``) so the
numbers live in exactly one place. Metrics: ``ter_acc``, ``ter_f1`` (true emotion), ``der_acc``, ``der_f1``
(disguised emotion); Table V reports TER only.
"""

from __future__ import annotations

from unmask.errors import UnmaskError

METRIC_KEYS = ("ter_acc", "ter_f1", "der_acc", "der_f1")


def _row(ter_acc: float, ter_f1: float, der_acc: float | None = None, der_f1: float | None = None) -> dict:
    row = {"ter_acc": ter_acc, "ter_f1": ter_f1, "der_acc": der_acc, "der_f1": der_f1}
    return {k: v for k, v in row.items() if v is not None}


#: table -> printed row label -> metric -> value
PAPER: dict[str, dict[str, dict[str, float]]] = {
    "I": {  # apex vs onset, single-stream ViT
        "Apex-based": _row(0.3719, 0.3518, 0.4707, 0.4604),
        "Onset-based": _row(0.4136, 0.3933, 0.3781, 0.3725),
    },
    "II": {  # ablation
        "ViT": _row(0.3719, 0.3518, 0.4707, 0.4604),
        "DSID w/o HSIC": _row(0.3781, 0.3683, 0.5154, 0.5118),
        "DSID": _row(0.3920, 0.3707, 0.5170, 0.5166),
    },
    "III": {  # alpha sweep, beta = 1
        "0.1": _row(0.3796, 0.3677, 0.5432, 0.5389),
        "0.3": _row(0.3873, 0.3703, 0.5077, 0.5073),
        "0.5": _row(0.3920, 0.3707, 0.5170, 0.5166),
        "0.7": _row(0.3796, 0.3665, 0.5062, 0.5077),
        "0.9": _row(0.3688, 0.3446, 0.4985, 0.4991),
        "1.0": _row(0.3673, 0.3419, 0.5062, 0.5038),
    },
    "IV": {  # beta sweep, alpha = 0.5
        "0.1": _row(0.3657, 0.3580, 0.3596, 0.3592),
        "0.3": _row(0.3843, 0.3750, 0.4907, 0.4908),
        "0.5": _row(0.3765, 0.3583, 0.4861, 0.4809),
        "0.7": _row(0.3827, 0.3631, 0.4954, 0.4939),
        "0.9": _row(0.3750, 0.3586, 0.5139, 0.5137),
        "1.0": _row(0.3920, 0.3707, 0.5170, 0.5166),
    },
    "V": {  # other models, TER only
        "ResNet18": _row(0.2948, 0.2869),
        "ViT": _row(0.3719, 0.3518),
        "CLIP": _row(0.3441, 0.3319),
        "DSID": _row(0.3920, 0.3707),
    },
}


def paper_row(ref: str) -> dict[str, float]:
    """The numbers of ``"TABLE/row"`` (e.g. ``"III/0.5"``); an unknown reference lists the known ones."""
    table, _, row = ref.partition("/")
    if table not in PAPER or row not in PAPER[table]:
        known = [f"{t}/{r}" for t, rows in PAPER.items() for r in rows]
        raise UnmaskError(f"unknown paper row {ref!r}; known: {', '.join(known)}")
    return dict(PAPER[table][row])
