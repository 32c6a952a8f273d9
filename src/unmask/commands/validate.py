"""``unmask validate MANIFEST``: check a manifest and list every problem with file, row and column."""

from __future__ import annotations

import argparse

HELP = "check a manifest: every problem is listed with file, row and column"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="manifest CSV")
    p.add_argument("--no-videos", action="store_true", help="do not open the videos (skip the frame-range check)")


def run(args: argparse.Namespace) -> int:
    from unmask.data.manifest import validate_manifest

    manifest, problems = validate_manifest(args.manifest, check_videos=not args.no_videos)
    for p in problems:
        print(p)
    n_masked = len(manifest.masked())
    print(f"{args.manifest}: {len(manifest)} valid clip(s) ({n_masked} masked, {len(manifest) - n_masked} congruent) "
          f"from {len(manifest.subjects)} subject(s); {len(problems)} problem(s)")
    return 1 if problems else 0
