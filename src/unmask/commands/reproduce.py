"""``unmask reproduce TABLE --manifest M [--prepared DIR] --out DIR [--quick] [--estimator E] [key=value ...]``.

TABLE is one of the files in configs/experiments (paradigm, ablation, alpha, beta, models) or ``all``; or
``ifdd``: IFDD vs its baselines and ablations (:mod:`unmask.experiments.ifdd_table`); or ``medn``: MEDN's
variants (:mod:`unmask.experiments.medn`; ``--variants`` picks them).
"""

from __future__ import annotations

import argparse

HELP = ("reproduce a method's tables: DSID's (I-V), IFDD's (ifdd) and MEDN's (medn), one command each; --quick runs "
        "them on synthetic data")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", nargs="+", metavar="TABLE",
                   help="DSID: paradigm (I), ablation (II), alpha (III), beta (IV), models (V), or all (I-V); "
                        "ifdd: IFDD vs its baselines and ablations; medn: MEDN's variants (--variants); "
                        "key=value config overrides may follow")
    p.add_argument("--manifest", help="manifest CSV of the dataset (prepared once into OUT/prepared)")
    p.add_argument("--prepared", help="folder written by `unmask prepare` (instead of --manifest)")
    p.add_argument("--out", required=True, help="output folder: runs/, tables/, data/ (quick)")
    p.add_argument("--quick", action="store_true",
                   help="synthetic data, tiny backbones AU-pretrained on other synthetic people and frozen, fewer "
                        "epochs (configs/experiments/quick.yaml): minutes on a 2-core CPU with --jobs 2 (measured times: docs)")
    p.add_argument("--estimator", action="append", metavar="E",
                   help="also run every HSIC row with loss.args.dsid.estimator=E (paper, biased, unbiased; repeat or comma list)")
    p.add_argument("--weights", action="append", metavar="BACKBONE=SPEC", default=[],
                   help="weights per backbone, e.g. clip_vit_b16=/p/ViT-B-16.pt vit_b16=/p/vit.safetensors "
                        "resnet18=/p/resnet18.safetensors (repeatable)")
    p.add_argument("--jobs", type=int, default=1,
                   help="folds (and, with --quick, backbone pretrainings) run in parallel processes")
    p.add_argument("--executor", choices=("local", "ray"),
                   help="where runs run: local processes (default, --jobs at a time) or Ray tasks, every run of "
                        "every table at once (runtime.executor; docs/cluster.md)")
    p.add_argument("--variants", help="medn: comma-separated variants of unmask.experiments.medn.VARIANTS (default with --quick: "
                   "medn, motion_only, apex_vit; without: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_medn(args: argparse.Namespace, overrides: list[str]) -> int:
    import time

    from unmask.experiments.medn import reproduce_medn

    t0 = time.time()
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    path = reproduce_medn(args.out, quick=args.quick, prepared=args.prepared, variants=variants,
                          overrides=overrides, progress=not args.quiet)
    print(path.read_text())
    print(f"table: {path}; done in {time.time() - t0:.0f} s")
    return 0


def run(args: argparse.Namespace) -> int:
    import logging
    import time
    from pathlib import Path

    from unmask.errors import UnmaskError
    from unmask.experiments.quick import quick_datasets, quick_pretrain, user_dataset
    from unmask.experiments.runner import expand, make_context, plan, pretraining_needed, reproduce, table_names
    from unmask.experiments.tables import load_table, parse_estimators, read_settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # positional words with "=" are config overrides (argparse cannot split two nargs lists by itself)
    names = [t for t in args.table if "=" not in t]
    overrides = [t for t in args.table if "=" in t] + ([f"runtime.executor={args.executor}"] if args.executor else [])
    if names == ["medn"]:
        return run_medn(args, overrides)
    if args.jobs < 1:
        raise UnmaskError(f"--jobs must be at least 1 (got {args.jobs})")
    if names == ["ifdd"]:
        return run_ifdd(args, overrides)
    names = table_names(names)
    estimators = parse_estimators(args.estimator)
    out = Path(args.out)
    t0 = time.time()
    notes = []
    if args.quick:
        presets = list(dict.fromkeys(d for n in names for d in load_table(n).quick_datasets))
        datasets = quick_datasets(out, presets, progress=not args.quiet)
        notes.append(str(read_settings("quick").get("note", "")).strip())
    else:
        from unmask.config import load_config

        base = read_settings("common").get("base", "dsid_paper")
        detector = load_config(base, [o for o in overrides if o.startswith("data.")]).data.detector
        datasets = user_dataset(out, args.manifest, args.prepared, detector=detector, progress=not args.quiet)
    ctx = make_context(out, datasets, quick=args.quick, overrides=overrides, weights=args.weights)
    cells = []
    for n in names:  # fail on a bad override or row before anything trains
        cells += plan(ctx, expand(ctx, load_table(n), estimators))
    if args.quick:  # each tiny backbone AU-pretrained once on other synthetic people; reused when present
        t1 = time.time()
        if quick_pretrain(out, pretraining_needed(ctx, cells), jobs=args.jobs, progress=not args.quiet):
            print(f"AU pretraining done in {time.time() - t1:.0f} s")
    written = reproduce(names, ctx, estimators=estimators, jobs=args.jobs, progress=not args.quiet, notes=notes)
    for name, paths in written.items():
        print(f"{name}: " + ", ".join(str(p) for p in paths.values()))
    print(f"done in {time.time() - t0:.0f} s")
    return 0


def run_ifdd(args: argparse.Namespace, overrides: list[str]) -> int:
    import logging

    from unmask.experiments.ifdd_table import reproduce_ifdd

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    weights = dict(w.split("=", 1) for w in args.weights if "=" in w)
    xs = weights.pop("mvit_xs", None)
    path = reproduce_ifdd(args.out, quick=args.quick, prepared=args.prepared,
                          weights=next(iter(weights.values()), None), overrides=overrides, jobs=args.jobs,
                          progress=not args.quiet, xs_weights=xs)
    print(path.read_text(encoding="utf-8"))
    print(f"table: {path}")
    return 0
