"""``unmask reproduce ifdd``: IFDD vs its baselines vs its ablations in one table, with CIs and paired tests.

``--quick``: the synthetic in-the-wild set (``unmask synth --kind dfer``, default knobs) and a tiny ResNet frozen
after AU-intensity pretraining on a second synthetic set of other people (seed 1000), all written once into
``OUT/data`` (rerunning reuses them); ``configs/ifdd_synth.yaml`` with ``optim.epochs=40``. Full: a user's
prepared DFEW (``--prepared``, from ``unmask import dfew`` + ``unmask prepare --frames uniform:48``) with
``configs/ifdd_dfew.yaml`` (``--weights clip_vit_b16=FILE``); with ``--weights mvit_xs=FILE`` also the XS video
backbone rows from ``configs/ifdd_xs_dfew.yaml`` (IFDD and a linear head, fine-tuned end to end).

Every row is a normal run under ``OUT/runs/<row>`` (finished runs are reused); the table gives WAR (accuracy) and
UAR pooled over the folds with bootstrap 95% CIs, the mean over folds, and for each row an exact McNemar test
and a paired-bootstrap CI of its accuracy difference to IFDD on the same clips. The published DFEW numbers of the
anchors in docs/ifdd.md follow in their own table: they are other methods on real DFEW, never comparable to the
quick (synthetic) numbers.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from unmask.errors import UnmaskError

log = logging.getLogger("unmask")

#: (row label, run name, config overrides). The frame average's lr and epochs were chosen on the validation folds
#: of the quick set (lr 1e-3: mean validation accuracy 0.22, 1e-2: 0.34, 3e-2: 0.36): a linear probe needs them.
ROWS = [
    ("frame average + linear", "frame_average",
     ["model.name=frame_average", "optim.lr=3.0e-2", "optim.epochs=200", "optim.patience=50"]),
    ("temporal transformer", "temporal_transformer", ["model.name=temporal_transformer"]),
    ("IFDD", "ifdd", []),
    ("IFDD, ISSM off (fixed even/odd split)", "ifdd_no_issm", ["model.args.ifdd.issm=false"]),
    ("IFDD, LADM off (no update/predict)", "ifdd_no_ladm", ["model.args.ifdd.ladm=false"]),
    ("IFDD, predict before update", "ifdd_predict_first", ["model.args.ifdd.order=predict_first"]),
    ("IFDD, no context loss", "ifdd_no_context", ["loss.args.ifdd.context_weight=0"]),
]
REFERENCE = "ifdd"

#: Full mode only, with ``--weights mvit_xs=FILE`` (a torchvision mvit_v2_s file): path (a), the paper's setting,
#: fine-tuned end to end from configs/ifdd_xs_dfew.yaml (a GPU's work: docs/ifdd.md), and the plain video backbone
#: with a linear head (the frame-average head over its time steps).
XS_BASE = "ifdd_xs_dfew"
XS_ROWS = [
    ("XS video backbone + linear head (fine-tuned)", "xs_linear", ["model.name=frame_average"]),
    ("IFDD on the XS video backbone (fine-tuned, the paper's path)", "ifdd_xs", []),
]

#: Published DFEW / FERV39k / MAFW numbers (UAR / WAR %) as listed in docs/ifdd.md; several select on the test split.
ANCHORS = [
    ("FineCLIPER (CLIP ViT-B/16 + adapters)", "65.98 / 76.21", "45.22 / 53.98", "45.01 / 56.91", "from a survey table"),
    ("MAE-DFER (ViT-B, video MAE pretraining)", "63.41 / 74.43", "43.12 / 52.07", "41.62 / 54.31", "~50 GFLOPs"),
    ("S2D (landmark-aware ViT-B)", "61.82 / 76.03", "41.28 / 52.56", "41.86 / 57.37", ""),
    ("DFER-CLIP (ViT-B/32 in code)", "59.61 / 71.25", "41.27 / 51.65", "39.89 / 52.55", "test split as validation"),
    ("M3DFEL (R3D18 + MIL)", "56.10 / 69.25", "35.94 / 47.67", "-", "1.66 GFLOPs"),
    ("IFDD (paper)", "not obtained", "not obtained", "not obtained", "claims to beat prior supervised methods"),
]

QUICK = {"synth": {"persons": 10, "clips_per_class": 4}, "pretrain": {"persons": 5, "clips_per_class": 2, "seed": 1000},
         "frames": 16, "size": 64, "pretrain_epochs": 12, "overrides": ["optim.epochs=40", "optim.patience=15"]}


def quick_data(out: Path, *, progress: bool = True) -> tuple[Path, Path]:
    """The quick set and the AU-pretrained tiny backbone, made once: ``(prepared dir, weights file)``."""
    from unmask.data.prepare import prepare
    from unmask.synth.dfer import DferSynthConfig, generate_dfer
    from unmask.train.pretrain import pretrain_au

    data = out / "data"
    sets = {}
    for name, knobs in (("dfer", QUICK["synth"]), ("dfer_pretrain", QUICK["pretrain"])):
        manifest = generate_dfer(data / name, DferSynthConfig(**knobs), progress=progress)
        prepared = data / name / "prepared"
        result = prepare(manifest, prepared, size=QUICK["size"], detector="annotated",
                         frames=f"uniform:{QUICK['frames']}", masked_only=False, progress=progress)
        if result.failed:
            raise UnmaskError(f"{result.failed} synthetic clip(s) failed to prepare; see {prepared / 'failures.csv'}")
        sets[name] = prepared
    weights = data / "tiny_resnet_au.safetensors"
    if not weights.is_file():
        pretrain_au(sets["dfer_pretrain"], weights, backbone="tiny_resnet", img_size=QUICK["size"],
                    epochs=QUICK["pretrain_epochs"], seed=0, progress=progress)
    return sets["dfer"], weights


def rows(quick: bool, xs_weights: str | None) -> list[tuple[str, str, list[str]]]:
    """The table's rows: ``ROWS``, and in full mode with XS weights given the video-backbone rows."""
    return ROWS + (XS_ROWS if xs_weights and not quick else [])


def row_configs(prepared: Path, *, quick: bool, weights: str | None, xs_weights: str | None = None,
                overrides: list[str] = ()) -> dict:
    """``{run name: Config}`` of every row, all loaded (and so checked) before any runs."""
    from unmask.config import load_config

    base = "ifdd_synth" if quick else "ifdd_dfew"
    common = [f"data.prepared={prepared}"] + (QUICK["overrides"] if quick else [])
    configs = {}
    for _, name, extra in rows(quick, xs_weights):
        if any(name == n for _, n, _ in XS_ROWS):
            configs[name] = load_config(XS_BASE, common + [f"model.weights={xs_weights}"] + extra + list(overrides))
        else:
            configs[name] = load_config(base, common + ([f"model.weights={weights}"] if weights else []) + extra
                                        + list(overrides))
    return configs


def run_rows(out: Path, prepared: Path, *, quick: bool, weights: str | None, overrides: list[str], jobs: int = 1,
             progress: bool = True, xs_weights: str | None = None) -> dict[str, Path]:
    from unmask.train.run import train_run

    runs = {}
    configs = row_configs(prepared, quick=quick, weights=weights, xs_weights=xs_weights, overrides=overrides)
    for label, name, _ in rows(quick, xs_weights):
        path = out / "runs" / name
        runs[name] = path
        if (path / "summary.json").is_file():
            log.info("%s: finished run reused (%s)", label, path)
            continue
        t0 = time.time()
        train_run(configs[name], path, resume=path.exists(), jobs=jobs, progress=progress)
        log.info("%s: %.0f s", label, time.time() - t0)
    return runs


def _fmt(pooled: float, ci) -> str:
    return f"{100 * pooled:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def table(runs: dict[str, Path], *, quick: bool) -> str:
    """Markdown table of the rows that ran (``runs``), IFDD the reference of the paired tests."""
    from unmask.eval.compare import compare_runs

    lines = ["| method | WAR % [95% CI] | UAR % [95% CI] | WAR mean ± std over folds | vs IFDD: accuracy diff "
             "[paired 95% CI], McNemar p |", "|---|---|---|---|---|"]
    for label, name, _ in ROWS + XS_ROWS:
        if name not in runs:
            continue
        s = json.loads((runs[name] / "summary.json").read_text())["tasks"]["emotion"]
        war, uar = s["pooled"]["accuracy"], s["pooled"]["uar"]
        fold = f"{100 * s['fold_mean']['accuracy']:.1f} ± {100 * s['fold_std']['accuracy']:.1f}"
        if name == REFERENCE:
            vs = "(reference)"
        else:
            c = compare_runs(runs[name], runs[REFERENCE])["tasks"]["emotion"]
            lo, hi = c["accuracy_diff_ci95"]
            vs = f"{100 * c['accuracy_diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}], p = {c['mcnemar_p']:.2g}"
        lines.append(f"| {label} | {_fmt(war, s['ci95']['accuracy'])} | {_fmt(uar, s['ci95']['uar'])} | {fold} | {vs} |")
    lines += ["", "Published numbers (UAR / WAR %, as reported; several select on the test split)"
              + (": other methods on the real datasets, **not comparable** with the synthetic rows above." if quick
                 else "; ours above use validation folds carved from the training folds."),
              "", "| method | DFEW | FERV39k | MAFW | notes |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {d} | {f} | {w} | {n} |" for m, d, f, w, n in ANCHORS]
    return "\n".join(lines) + "\n"


def reproduce_ifdd(out: str | Path, *, quick: bool, prepared: str | None = None, weights: str | None = None,
                   overrides: list[str] | None = None, jobs: int = 1, progress: bool = True,
                   xs_weights: str | None = None) -> Path:
    out = Path(out)
    t0 = time.time()
    if quick:
        prepared_dir, pretrained = quick_data(out, progress=progress)
        weights = weights or str(pretrained)
    else:
        if not prepared:
            raise UnmaskError("reproduce ifdd needs --prepared DIR (a DFEW manifest from `unmask import dfew`, prepared "
                              "with `unmask prepare --frames uniform:48`), or --quick")
        prepared_dir = Path(prepared)
    runs = run_rows(out, prepared_dir, quick=quick, weights=weights, overrides=overrides or [], jobs=jobs,
                    progress=progress, xs_weights=xs_weights)
    text = table(runs, quick=quick)
    header = ("# IFDD: baselines and ablations" + (" (quick: synthetic in-the-wild set)" if quick else "") + "\n\n"
              + ("Data: `unmask synth --kind dfer` (10 persons x 7 classes x 4 clips, DFEW's 5 folds); tiny ResNet "
                 "(64 px, 2x2 tokens) AU-pretrained on 5 other synthetic persons and frozen; configs/ifdd_synth.yaml "
                 "with 40 epochs. These numbers test the pipeline and the synthetic set's built-in effects, not the "
                 "paper's claims on DFEW.\n\n" if quick else "")
              + ("" if quick or xs_weights else "The XS video-backbone rows (the paper's path, fine-tuned end to end; "
                 "a GPU's work) run with `--weights mvit_xs=FILE` (a torchvision mvit_v2_s file).\n\n")
              + f"Validation: one training fold per test fold (never the test fold). Made in {time.time() - t0:.0f} s "
                f"by `unmask reproduce ifdd{' --quick' if quick else ''}`.\n\n")
    path = out / "tables" / "ifdd.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + text, encoding="utf-8")
    return path
