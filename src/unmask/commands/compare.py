"""``unmask compare RUN_A RUN_B``: side-by-side metrics with paired tests over the same clips."""

from __future__ import annotations

import argparse

HELP = "compare two runs on their common test clips (McNemar and paired bootstrap)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--json", help="also write the comparison as JSON here")


def run(args: argparse.Namespace) -> int:
    from unmask.eval.compare import compare_runs, format_comparison, write_comparison

    res = compare_runs(args.run_a, args.run_b)
    print(format_comparison(res))
    if args.json:
        write_comparison(res, args.json)
    return 0
