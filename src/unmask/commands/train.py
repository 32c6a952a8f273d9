"""``unmask train --config FILE [key=value ...] --out RUN``."""

from __future__ import annotations

import argparse

HELP = "train and evaluate a model with a subject-independent protocol (LOSO by default)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (e.g. configs/dsid_paper.yaml); defaults otherwise")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. loss.args.dsid.alpha=0.3")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (finished folds are kept)")
    p.add_argument("--folds", help="run only these folds, e.g. s01,s03 (same as protocol.folds=...)")
    p.add_argument("--jobs", type=int, default=1, help="parallel processes: N stacks of folds (cached features) or N folds at a time (image path)")
    p.add_argument("--executor", choices=("local", "ray"),
                   help="where fold groups run: local processes (default) or Ray tasks (runtime.executor; docs/cluster.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from unmask.config import load_config
    from unmask.train.run import train_run

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = list(args.overrides) + ([f"protocol.folds=[{args.folds}]"] if args.folds else [])
    overrides += [f"runtime.executor={args.executor}"] if args.executor else []
    cfg = load_config(args.config, overrides)
    out = train_run(cfg, args.out, resume=args.resume, jobs=args.jobs, progress=not args.quiet,
                    argv=["unmask"] + sys.argv[1:])
    print(f"report: {out / 'report.md'}")
    return 0
