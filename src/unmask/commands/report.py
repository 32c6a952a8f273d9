"""``unmask report RUN``: recompute summary.json and report.md of a run directory."""

from __future__ import annotations

import argparse

HELP = "(re)write summary.json and report.md for a run directory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unmask.eval.report import metrics_table, write_report, write_summary

    summary = write_summary(Path(args.run))
    path = write_report(Path(args.run), summary)
    print(metrics_table(summary))
    print(f"report: {path}")
    return 0
