"""``unmask report RUN``: recompute summary.json and report.md of a run directory."""

HELP = "(re)write summary.json and report.md for a run directory"


def add_arguments(p):
    p.add_argument("run", help="run directory")


def run(args) -> int:
    from pathlib import Path

    from unmask.eval.report import metrics_table, write_report, write_summary

    summary = write_summary(Path(args.run))
    path = write_report(Path(args.run), summary)
    print(metrics_table(summary))
    print(f"report: {path}")
    return 0
