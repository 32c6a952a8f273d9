"""``unmask import-mfed SHEET --mapping MAP.yaml --videos DIR --out manifest.csv``: ``unmask import mfed``."""

from __future__ import annotations

import argparse

HELP = "alias of `unmask import mfed`: a manifest from an MFED-style annotation sheet and its video folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from unmask.commands.import_source import add_common
    from unmask.data.sources import get_source

    get_source("mfed").add_arguments(p)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from unmask.commands.import_source import run_source

    return run_source("mfed", args)
