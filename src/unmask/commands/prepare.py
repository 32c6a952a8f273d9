"""``unmask prepare MANIFEST --out DIR``: decode, detect, crop and cache every clip (resumable)."""

from __future__ import annotations

import argparse

HELP = "decode frames, detect and crop faces, cache every clip of a manifest on disk (resumable)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="manifest CSV")
    p.add_argument("--out", required=True, help="folder of the prepared set (created; reused by a rerun)")
    p.add_argument("--detector", default="auto", help="auto (per frame: yuface, then haar, then the manifest "
                   "box), yuface, haar, annotated (manifest boxes) or none (frames are already crops: the whole "
                   "frame, no margin); default: auto")
    p.add_argument("--size", type=int, default=224, help="side of the square crops in pixels (default 224)")
    p.add_argument("--margin", type=float, default=0.2,
                   help="context added on every side, as a fraction of the face box's longer side (default 0.2)")
    p.add_argument("--frames", default="keyframes", metavar="POLICY",
                   help="which frames to keep: keyframes (onset, apex, offset and K between; default), uniform:T "
                   "(T frames over the whole video: clips without key frames) or span:T (T frames from onset to "
                   "offset: micro-expressions) or rise:T (T frames from onset to apex: MEDN)")
    p.add_argument("--clip-frames", type=int, default=8, metavar="K",
                   help="with --frames keyframes: frames sampled uniformly from onset to offset for clip models "
                   "(default 8; 0 disables)")
    p.add_argument("--align", action="store_true",
                   help="turn each crop so the eyes are level (YuNet's landmarks): the crops of a clip are registered")
    p.add_argument("--flow", default="none", metavar="METHOD",
                   help="also cache the onset-to-apex optical flow (u, v, optical strain) per clip: dis, farneback "
                   "or tvl1 (TV-L1, the field's usual choice, slowest); default none")
    p.add_argument("--flow-align", choices=("ecc", "none"), default="ecc",
                   help="register apex onto onset before the flow (ECC, Euclidean) so head motion does not swamp "
                   "it (default ecc)")
    p.add_argument("--max-loss", type=float, default=0.2, metavar="SHARE",
                   help="warn about a subject that loses more than this share of its clips (default 0.2)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out malformed manifest rows and list them (default: refuse the manifest)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--masked-only", action="store_true", help="only the masked clips (true != disguised)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys

    from unmask.data.faces import describe_detector, resolve_detector_name
    from unmask.data.prepare import prepare

    detector = resolve_detector_name(args.detector)
    print(f"face detector: {describe_detector(detector)}", file=sys.stderr)
    result = prepare(args.manifest, args.out, detector=detector, size=args.size, margin=args.margin,
                     frames=args.frames, clip_frames=args.clip_frames, align=args.align, flow=args.flow,
                     flow_align=args.flow_align, workers=args.workers,
                     masked_only=args.masked_only, skip_invalid=args.skip_invalid, max_loss=args.max_loss,
                     progress=not args.no_progress)
    for problem in result.invalid:
        print(f"  skipped invalid row: {problem}", file=sys.stderr)
    for f in result.failures[:10]:
        print(f"  failed: {f.clip_id} (row {f.row}): {f.reason}", file=sys.stderr)
    if len(result.failures) > 10:
        print(f"  ... and {len(result.failures) - 10} more", file=sys.stderr)
    print(result.summary())
    return 1 if result.failed or result.invalid else 0
