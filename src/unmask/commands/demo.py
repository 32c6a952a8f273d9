"""``unmask demo [--out DIR]``: the whole DSID workflow on the embedded synthetic set, on a CPU in minutes.

1. synthetic masked-expression videos (8 subjects)          -> DIR/synth
2. a second synthetic set of 4 other people (another seed)  -> DIR/pretrain/synth
3. face crops of both                                         -> DIR/prepared, DIR/pretrain/prepared
4. AU-intensity pretraining of a tiny backbone on set 2      -> DIR/pretrain/<backbone>_au.safetensors
   (the tiny backbone has no published weights; DSID, like the paper, trains heads on a frozen pretrained one)
5. DSID with leave-one-subject-out on set 1, heads on cached frozen features -> DIR/run (report.md)

Every step resumes: rerunning the command skips what is finished.
"""

from __future__ import annotations

import argparse
import os

HELP = "end-to-end DSID demo on the embedded synthetic set (synth -> prepare -> pretrain -> LOSO -> report)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="demo folder (default: runs/demo)")
    p.add_argument("--subjects", type=int, default=8, help="synthetic subjects for LOSO (default 8)")
    p.add_argument("--pretrain-subjects", type=int, default=4, help="other subjects for AU pretraining (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="folds trained in parallel processes (default: 2 where there are 2 cores)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for training")


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    import time
    from pathlib import Path

    from unmask.config import load_config
    from unmask.data.prepare import prepare
    from unmask.synth.masked import SynthConfig, generate
    from unmask.train.pretrain import pretrain_au
    from unmask.train.run import train_run

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    t0 = time.time()
    cfg = load_config("dsid_synth", [f"runtime.seed={args.seed}", *args.overrides])
    size = cfg.model.backbone_args.get("img_size") or 64
    print(f"[1/5] synthetic masked-expression videos, {args.subjects} subjects -> {out / 'synth'}")
    manifest = generate(out / "synth", SynthConfig(subjects=args.subjects, seed=args.seed))
    print(f"[2/5] pretraining set, {args.pretrain_subjects} other people (seed {args.seed + 1000}) "
          f"-> {out / 'pretrain' / 'synth'}")
    pre_manifest = generate(out / "pretrain" / "synth",
                            SynthConfig(subjects=args.pretrain_subjects, seed=args.seed + 1000))
    print(f"[3/5] face crops -> {out / 'prepared'}, {out / 'pretrain' / 'prepared'}")
    prepare(manifest, out / "prepared", detector=cfg.data.detector, size=size, masked_only=cfg.data.masked_only)
    prepare(pre_manifest, out / "pretrain" / "prepared", detector=cfg.data.detector, size=size)
    weights = out / "pretrain" / f"{cfg.model.backbone}_au.safetensors"
    if weights.is_file():
        print(f"[4/5] AU-pretrained backbone already in {weights}")
    else:
        print(f"[4/5] AU-intensity pretraining of {cfg.model.backbone} -> {weights}")
        pretrain_au(out / "pretrain" / "prepared", weights, backbone=cfg.model.backbone, img_size=size,
                    seed=args.seed)
    cfg.model.weights = str(weights)
    cfg.data.prepared = str(out / "prepared")
    print(f"[5/5] DSID, leave-one-subject-out -> {out / 'run'}")
    run_dir = train_run(cfg, out / "run", resume=True, jobs=args.jobs)
    summary = json.loads((run_dir / "summary.json").read_text())
    for task, s in summary["tasks"].items():
        acc, (lo, hi) = s["pooled"]["accuracy"], s["ci95"]["accuracy"]
        print(f"{task} emotion: accuracy {acc:.3f} (95% CI {lo:.3f}-{hi:.3f}), chance {s['chance']:.3f}, "
              f"{(acc - s['chance']) * 100:+.1f} points (p = {s['p_above_chance']:.2g}); macro-F1 {s['pooled']['f1']:.3f}")
    print(f"done in {time.time() - t0:.0f} s; report: {run_dir / 'report.md'}")
    return 0
