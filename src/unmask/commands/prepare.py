"""``unmask prepare MANIFEST --out DIR``: decode, detect, crop and cache every clip (resumable)."""

HELP = "decode frames, detect and crop faces, cache every clip of a manifest on disk (resumable)"


def add_arguments(p):
    p.add_argument("manifest", help="manifest CSV")
    p.add_argument("--out", required=True, help="folder of the prepared set (created; reused by a rerun)")
    p.add_argument("--detector", default="auto", help="auto (yuface, else haar), yuface, haar, annotated "
                   "(manifest boxes) or none (frames are already crops); default: auto")
    p.add_argument("--size", type=int, default=224, help="side of the square crops in pixels (default 224)")
    p.add_argument("--margin", type=float, default=0.2,
                   help="context added on every side, as a fraction of the face box's longer side (default 0.2)")
    p.add_argument("--clip-frames", type=int, default=8, metavar="K",
                   help="frames sampled uniformly from onset to offset for clip models (default 8; 0 disables)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--masked-only", action="store_true", help="only the masked clips (true != disguised)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    import sys

    from unmask.data.faces import resolve_detector_name
    from unmask.data.prepare import prepare

    detector = resolve_detector_name(args.detector)
    how = " (auto: yuface is not importable, falling back)" if args.detector == "auto" and detector == "haar" else ""
    print(f"face detector: {detector}{how}", file=sys.stderr)
    result = prepare(args.manifest, args.out, detector=detector, size=args.size, margin=args.margin,
                     clip_frames=args.clip_frames, workers=args.workers, masked_only=args.masked_only,
                     progress=not args.no_progress)
    for f in result.failures[:10]:
        print(f"  failed: {f.clip_id} (row {f.row}): {f.reason}", file=sys.stderr)
    if len(result.failures) > 10:
        print(f"  ... and {len(result.failures) - 10} more", file=sys.stderr)
    print(result.summary())
    return 1 if result.failed else 0
