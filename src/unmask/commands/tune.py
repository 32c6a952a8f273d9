"""``unmask tune --config FILE --space SPACE.yaml [key=value ...] --out DIR --trials N``."""

from __future__ import annotations

import argparse

HELP = "search hyper-parameters with Ray Tune (ASHA) on validation subjects, then train the best setting once"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML config (e.g. dsid_paper); defaults otherwise")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.epochs=30")
    p.add_argument("--space", required=True,
                   help="YAML search space: config key -> list of values or {uniform|loguniform|randint: [lo, hi]}")
    p.add_argument("--out", required=True, help="output folder: trials/, final/ (the chosen setting's run), tune.md")
    p.add_argument("--trials", type=int, default=8, help="settings sampled from the space (default 8)")
    p.add_argument("--grace", type=int, default=1, help="epochs every trial runs before ASHA may stop it")
    p.add_argument("--executor", choices=("local", "ray"),
                   help="where the chosen setting's final run trains (trials always run as Ray Tune trials)")
    p.add_argument("--jobs", type=int, default=1, help="local processes for the final run")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from unmask.config import load_config
    from unmask.train.tune import read_space, tune_run

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = list(args.overrides) + ([f"runtime.executor={args.executor}"] if args.executor else [])
    cfg = load_config(args.config, overrides)
    space = read_space(args.space, cfg)
    record = tune_run(cfg, space, args.out, trials=args.trials, grace=args.grace, progress=not args.quiet,
                      space_file=args.space, jobs=args.jobs)
    print(f"chosen: {record['chosen']} (validation score {record['chosen_val_score']:.4f})")
    print(f"search report: {args.out}/tune.md; final run: {record['final_run']}/report.md", file=sys.stdout)
    return 0
