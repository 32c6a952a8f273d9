"""``unmask import SOURCE ... --out manifest.csv``: a dataset's own annotations -> a manifest, by source name.

Each source adapter (``unmask.data.sources``) brings its own arguments: ``unmask import SOURCE --help``.
"""

from __future__ import annotations

import argparse

NAME = "import"
HELP = "make a manifest from a dataset's own annotation files, by source name (unmask import SOURCE --help)"


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="manifest CSV to write")
    p.add_argument("--skip-invalid", action="store_true",
                   help="write the valid rows and list the bad ones (default: write nothing if any row is bad)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from unmask.data.sources import get_source, list_sources

    sub = p.add_subparsers(dest="source", metavar="SOURCE", required=True,
                           help=f"one of: {', '.join(list_sources())}")
    for name in list_sources():
        source = get_source(name)
        tasks = "; ".join(f"{t.name} ({t.title}): {t.kind}-label over {', '.join(t.labels)}" for t in source.tasks)
        sp = sub.add_parser(name, help=source.help, description=f"{source.help}. Tasks: {tasks}.")
        source.add_arguments(sp)
        add_common(sp)


def run_source(name: str, args: argparse.Namespace) -> int:
    from unmask.data.sources import get_source

    source = get_source(name)
    result = source.run(args, args.out, skip_invalid=args.skip_invalid)
    if result.out is not None:  # training records which adapter the faces came from (unmask.provenance)
        from unmask.provenance import write_source_record

        write_source_record(result.out, name)
    for p in result.problems:
        print(f"skipped: {p}")
    print(source.describe(result) + (f"; {len(result.problems)} row problem(s) skipped" if result.problems else ""))
    return 1 if result.problems else 0


def run(args: argparse.Namespace) -> int:
    return run_source(args.source, args)
