"""``unmask import-mfed SHEET --mapping MAP.yaml --videos DIR --out manifest.csv``."""

HELP = "make a manifest from an MFED-style annotation sheet (xlsx or csv) and its video folder"


def add_arguments(p):
    p.add_argument("sheet", help="annotation sheet (.xlsx or .csv)")
    p.add_argument("--mapping", required=True, help="YAML naming the sheet's columns "
                   "(see configs/sources/mfed_mapping.example.yaml)")
    p.add_argument("--videos", required=True, help="folder holding the videos")
    p.add_argument("--out", required=True, help="manifest CSV to write")
    p.add_argument("--skip-invalid", action="store_true",
                   help="write the valid rows and list the bad ones (default: write nothing if any row is bad)")


def run(args) -> int:
    from unmask.data.sources.mfed import import_mfed

    result = import_mfed(args.sheet, args.mapping, args.videos, args.out, skip_invalid=args.skip_invalid)
    for p in result.problems:
        print(f"skipped: {p}")
    print(f"wrote {len(result.clips)} clip(s) ({result.congruent} congruent, flagged) to {result.out}"
          + (f"; {len(result.problems)} row problem(s) skipped" if result.problems else ""))
    return 1 if result.problems else 0
