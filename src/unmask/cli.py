"""Command-line entry point: ``unmask <command> ...``.

Each command lives in its own module under :mod:`unmask.commands` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int`` (and ``NAME`` where the command is not the module's name). Command modules import only argparse-level things at
module scope; heavy imports (torch, av, ...) happen inside ``run`` so ``unmask --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import unmask
from unmask.errors import UnmaskError


def _command_modules():
    import unmask.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield info.name, importlib.import_module(f"unmask.commands.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unmask",
        description="Emotion where faces hide or dilute it: masked expressions (DSID), expressions in the wild (IFDD), "
                    "micro-expressions (MEDN).",
    )
    parser.add_argument("--version", action="version", version=f"unmask {unmask.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in _command_modules():
        # NAME: a command whose name is no module name ("import" is a Python keyword)
        p = sub.add_parser(getattr(mod, "NAME", name.replace("_", "-")), help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also follow the options (argparse stops a positional list at the first option)
    for name in ("overrides", "table"):
        if extra and isinstance(getattr(args, name, None), list) and all("=" in e and not e.startswith("-")
                                                                          for e in extra):
            getattr(args, name).extend(extra)
            extra = []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UnmaskError as e:
        print(e.render(), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted; finished work is kept, rerun the same command to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
