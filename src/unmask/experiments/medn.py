"""``unmask reproduce medn``: MEDN vs its baselines and ablations in one table, with the MEGC2019 anchors.

``--quick`` (the synthetic micro set): ``unmask synth --kind micro`` -> ``prepare --frames rise:8 --flow dis``
-> every variant (by default MEDN, the motion branch alone and an apex-frame RGB ViT) trained with ``configs/medn_synth.yaml`` under LOSO (validation subject from the training
subjects) -> a table with UF1 / UAR pooled over the folds, the accuracy on the **ambiguous pair** (the clips
whose class only the onset dynamics tell, ground truth from ``clips.csv``) and on the other clips, AU macro-F1,
and for every variant an exact McNemar test against the motion-branch-alone baseline on the ambiguous clips.

Without ``--quick`` the variants run on the user's prepared set (e.g. the MEGC2019 composite, prepared with
``--frames rise:8 --flow dis``), and the published composite anchors (MEDN.md) are printed beside ours, with
their protocol caveats. The anchors are numbers as reported, not reproduced here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    import pandas as pd

    from unmask.data.prepare import PreparedSet

#: variant -> config overrides on top of configs/medn_synth.yaml (every ablation switch of the model and loss)
VARIANTS: dict[str, list[str]] = {
    "medn": [],
    "motion_only": ["model.args.medn.branches=motion", "loss.args.medn.orth_weight=0"],
    "emotion_only": ["model.args.medn.branches=emotion", "loss.args.medn.orth_weight=0"],
    "no_orth": ["loss.args.medn.orth_weight=0"],
    "no_au_head": ["model.args.medn.au_head=false"],
    "dense_tokens": ["model.args.medn.rates=[1.0]"],
    "one_rate": ["model.args.medn.rates=[0.5]"],
    "sum_fusion": ["model.args.medn.fusion=sum"],
    "cross_attention": ["model.args.medn.fusion=cross_attention"],
    "hsic": ["loss.args.medn.orth=hsic"],
    "rgb_frames": ["model.args.medn.frame_input=rgb"],
    # baseline: the apex frame alone through an RGB ViT (the config's tiny ViT, from scratch, in quick mode) with
    # one head per task (emotion and AUs): no motion, no dynamics
    "apex_vit": ["model.name=multitask", "data.paradigm=apex", "model.args.multitask.adapter_dim=64",
                 "model.args.multitask.dropout=0.3"],
}
QUICK_VARIANTS = ("medn", "motion_only", "apex_vit")  # the claim and the cheap baselines; ablations with --variants
BASELINE = "motion_only"
#: MEGC2019 composite, UF1 / UAR as reported (MEDN.md), with the caveat that goes with each
ANCHORS = [
    ("CausalNet (ICCV 2025)", 0.8976, 0.9020, "tunes and selects epochs on test folds"),
    ("HTNet (2023)", 0.8603, 0.8475, "best epoch per test subject; reproduced ~0.65 UF1"),
    ("FRL-DGT (CVPR 2023)", 0.812, 0.811, "protocol unverified"),
]


def ambiguous_ids(synth_dir: str | Path) -> list[str]:
    from unmask.synth.micro import read_ground_truth

    return sorted(cid for cid, r in read_ground_truth(synth_dir).items() if r["ambiguous"] == "1")


def _accuracy(preds, task: str, ids) -> tuple[float, float, float, int]:
    """Accuracy on the clips ``ids`` with a 95% percentile bootstrap CI."""
    sub = preds[preds.clip_id.isin(set(ids))]
    if sub.empty:
        return float("nan"), float("nan"), float("nan"), 0
    ok = (sub[task].astype(str) == sub[f"{task}_pred"].astype(str)).to_numpy(float)
    boot = ok[np.random.default_rng(0).integers(0, len(ok), (2000, len(ok)))].mean(1)
    return float(ok.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)), len(ok)


def variant_row(name: str, run: Path, ambiguous: list[str] | None, baseline: Path | None, task: str = "emotion") -> dict:
    from unmask.eval.compare import compare_runs
    from unmask.eval.report import load_predictions

    summary = json.loads((run / "summary.json").read_text())
    tasks = summary["tasks"]
    emo = tasks[task]
    row = {"variant": name, "uf1": emo["pooled"]["f1"], "uf1_ci": emo["ci95"]["f1"], "uar": emo["pooled"]["uar"],
           "uar_ci": emo["ci95"]["uar"]}
    aus = next((t for n, t in tasks.items() if n != task and t.get("kind") == "multi"), None)
    row["au_f1"] = aus["pooled"]["macro_f1"] if aus else None
    preds = load_predictions(run)
    row["per_source"] = per_source(preds, task)
    if ambiguous is not None:
        others = sorted(set(preds.clip_id) - set(ambiguous))
        row["amb_acc"], lo, hi, row["n_amb"] = _accuracy(preds, task, ambiguous)
        row["amb_ci"] = [lo, hi]
        row["other_acc"], *_ = _accuracy(preds, task, others)
        if baseline is not None and run != baseline:
            res = compare_runs(run, baseline, clips=ambiguous)["tasks"][task]
            row["vs_baseline"] = {"diff": res["accuracy_diff"], "ci95": res["accuracy_diff_ci95"],
                                  "mcnemar_p": res["mcnemar_p"], "a_only": res["a_only_correct"],
                                  "b_only": res["b_only_correct"]}
    return row


@torch.no_grad()
def test_features(run: Path, prepared: PreparedSet) -> tuple[np.ndarray, np.ndarray]:
    """Motion and emotion features of every fold's test clips, from the fold's checkpoint: ``[N, dm], [N, de]``."""
    from unmask.checkpoint import load_checkpoint
    from unmask.data.datasets import load_frames
    from unmask.data.prepare import PreparedSet
    from unmask.data.transforms import Preprocess
    from unmask.eval.report import load_predictions

    preds = load_predictions(run)
    model0, _ = load_checkpoint(run / "folds" / preds.fold.iloc[0])
    data = load_frames(PreparedSet(prepared), "clip_flow", masked_only=False,
                       size=model0.data_config["input_size"][-1])
    ms, es = [], []
    for fold, rows in preds.groupby("fold", sort=True):
        model, _ = load_checkpoint(run / "folds" / fold)
        norm = Preprocess(model.data_config["mean"], model.data_config["std"])
        idx = [data.clip_ids.index(c) for c in rows.clip_id]
        out = model(norm(data.images[idx], train=False))
        ms.append(out["motion_features"].numpy())
        es.append(out["emotion_features"].numpy())
    return np.concatenate(ms), np.concatenate(es)


def cross_correlation(m: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Pearson correlation of every motion dimension with every emotion dimension ``[dm, de]`` (constant
    dimensions, such as ReLU units that never fire, count as uncorrelated)."""
    mc, ec = m - m.mean(0), e - e.mean(0)
    mc = mc / np.maximum(np.linalg.norm(mc, axis=0), 1e-8)
    ec = ec / np.maximum(np.linalg.norm(ec, axis=0), 1e-8)
    return mc.T @ ec


def decoupling_figure(corrs: dict[str, np.ndarray], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(corrs), figsize=(3.6 * len(corrs), 3.4), squeeze=False)
    for ax, (name, c) in zip(axes[0], corrs.items()):
        im = ax.imshow(np.abs(c), vmin=0, vmax=1, cmap="magma")
        ax.set_title(f"{name}\nmean corr^2 = {np.mean(c ** 2):.3f}", fontsize=9)
        ax.set_xlabel("emotion feature")
    axes[0, 0].set_ylabel("motion feature")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="|Pearson r| over the test clips")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


SOURCES = ("casme2", "samm", "smic")  # the MEGC2019 composite's subject prefixes (unmask import megc2019)


def per_source(preds: pd.DataFrame, task: str = "emotion") -> dict[str, dict]:
    """UF1 and UAR per source dataset of a composite, on the same pooled predictions (subjects ``casme2_*``,
    ``samm_*``, ``smic_*``); empty when the subjects carry no such prefix."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    out = {}
    for src in SOURCES:
        sub = preds[preds.subject.astype(str).str.startswith(f"{src}_")]
        if sub.empty:
            continue
        y, p = sub[task].astype(str), sub[f"{task}_pred"].astype(str)
        labels = sorted(set(y))
        out[src] = {"n": len(sub), "uf1": float(f1_score(y, p, labels=labels, average="macro", zero_division=0)),
                    "uar": float(balanced_accuracy_score(y, p))}
    return out


def _summary_key_check(run: Path) -> None:
    if not (run / "summary.json").is_file():
        from unmask.errors import UnmaskError

        raise UnmaskError(f"{run}: no summary.json (the run did not finish)")


def format_table(rows: list[dict], quick: bool) -> str:
    def ci(v, c):
        return f"{v:.3f} [{c[0]:.3f}, {c[1]:.3f}]"

    head = "| variant | UF1 [95% CI] | UAR [95% CI] | AU macro-F1 | motion-emotion mean corr^2 |"
    sep = "|---|---|---|---|---|"
    if quick:
        head += f" ambiguous-pair acc [95% CI] | other clips acc | vs {BASELINE} on the pair (diff, McNemar p) |"
        sep += "---|---|---|"
    lines = [head, sep]
    for r in rows:
        au = "-" if r["au_f1"] is None else f"{r['au_f1']:.3f}"
        corr = f"{r['corr2']:.3f}" if "corr2" in r else "-"
        line = f"| {r['variant']} | {ci(r['uf1'], r['uf1_ci'])} | {ci(r['uar'], r['uar_ci'])} | {au} | {corr} |"
        if quick:
            vs = r.get("vs_baseline")
            vs_text = "-" if vs is None else (f"{vs['diff']:+.3f} [{vs['ci95'][0]:+.3f}, {vs['ci95'][1]:+.3f}], "
                                              f"p = {vs['mcnemar_p']:.3g} ({vs['a_only']} vs {vs['b_only']})")
            line += f" {ci(r['amb_acc'], r['amb_ci'])} (n={r['n_amb']}) | {r['other_acc']:.3f} | {vs_text} |"
        lines.append(line)
    sourced = [r for r in rows if r.get("per_source")]
    if sourced:
        lines += ["", "Per source dataset (the same pooled predictions), UF1 / UAR (n):", "",
                  "| variant | " + " | ".join(SOURCES) + " |", "|---|" + "---|" * len(SOURCES)]
        for r in sourced:
            cells = [f"{r['per_source'][s]['uf1']:.3f} / {r['per_source'][s]['uar']:.3f} ({r['per_source'][s]['n']})"
                     if s in r["per_source"] else "-" for s in SOURCES]
            lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    if not quick:
        lines += ["", "MEGC2019 composite anchors, as reported (not reproduced here):", "",
                  "| method | UF1 | UAR | caveat |", "|---|---|---|---|"]
        lines += [f"| {n} | {f:.4f} | {u:.4f} | {c} |" for n, f, u, c in ANCHORS]
    return "\n".join(lines)


def reproduce_medn(out: str | Path, *, quick: bool = True, prepared: str | Path | None = None, variants: Sequence[str] | None = None, overrides: Sequence[str] = (), subjects: int = 6,
                   clips: int = 16, progress: bool = False) -> Path:
    """Run the variants and write ``OUT/medn_table.md`` and ``.json``; returns the markdown path."""
    from unmask.config import load_config
    from unmask.errors import UnmaskError
    from unmask.train.run import train_run

    out = Path(out)
    variants = list(variants or (QUICK_VARIANTS if quick else VARIANTS))
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UnmaskError(f"unknown MEDN variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    ambiguous = None
    if quick:
        from unmask.data.prepare import prepare
        from unmask.synth.micro import MicroConfig, generate_micro

        manifest = generate_micro(out / "data", MicroConfig(subjects=subjects, clips=clips), progress=progress)
        prepare(manifest, out / "prepared", detector="annotated", size=112, frames="rise:8", flow="dis",
                progress=progress)
        prepared = out / "prepared"
        ambiguous = ambiguous_ids(out / "data")
    elif prepared is None:
        raise UnmaskError("unmask reproduce medn needs --prepared DIR (prepared with --frames rise:8 --flow dis) "
                          "or --quick")
    if quick and BASELINE not in variants:
        variants.insert(0, BASELINE)
    runs = {}
    for v in variants:
        cfg = load_config("medn_synth", [f"data.prepared={prepared}", *VARIANTS[v], *overrides])
        # resume: a rerun reuses finished folds (a different configuration in the folder is still refused)
        runs[v] = train_run(cfg, out / "runs" / v, resume=True, progress=progress)
        _summary_key_check(Path(runs[v]))
    base = Path(runs[BASELINE]) if BASELINE in runs else None
    rows = [variant_row(v, Path(runs[v]), ambiguous, base) for v in variants]
    corrs = {}
    for row in rows:  # decoupling: motion-emotion cross-correlation on the test clips (both branches only)
        if any(o.startswith(("model.args.medn.branches=", "model.name=")) for o in VARIANTS[row["variant"]]):
            continue  # one branch, or another model: no motion-emotion pair
        c = cross_correlation(*test_features(Path(runs[row["variant"]]), prepared))
        row["corr2"] = float(np.mean(c ** 2))
        corrs[row["variant"]] = c
    if corrs:
        decoupling_figure(corrs, out / "decoupling.png")
    table = format_table(rows, quick)
    (out / "medn_table.json").write_text(json.dumps(rows, indent=1) + "\n")
    path = out / "medn_table.md"
    path.write_text(table + "\n")
    return path
