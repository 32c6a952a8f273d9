"""``unmask synth OUT``: write the synthetic masked-expression set (manifest, mp4 videos, AU annotations)."""

HELP = "generate a synthetic masked-expression dataset with known ground truth (manifest + mp4 + AU annotations)"


def _size(text: str) -> tuple[int, int]:
    import argparse

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}") from None
    return w, h


def add_arguments(p):
    p.add_argument("out", help="output folder (new or empty; or the same folder with the same options to resume)")
    p.add_argument("--subjects", type=int, default=8, help="number of subjects, 30 masked clips each (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same data (default 0)")
    p.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="frame size (default 320x240)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    p.add_argument("--preset", choices=("default", "hard"), default="default",
                   help="default: leak 0.35, onset 1.0; hard: leak 0.15, onset 1.3 (explicit flags override)")
    p.add_argument("--leak", type=float, default=None,
                   help="upper-face residue of the true emotion at the apex, fraction of full intensity")
    p.add_argument("--onset-strength", type=float, default=None,
                   help="true emotion at the onset frame, fraction of full intensity")
    p.add_argument("--congruent", action="store_true", help="also the 6 congruent clips (true == disguised)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--preview", action="store_true", help="also write OUT/preview.png (onset and apex frames)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from unmask.data.synth import SynthConfig, generate

    config = SynthConfig.from_preset(
        args.preset, subjects=args.subjects, seed=args.seed, width=args.size[0], height=args.size[1],
        fps=args.fps, leak=args.leak, onset_strength=args.onset_strength, congruent=args.congruent,
    )
    manifest = generate(args.out, config, workers=args.workers, progress=not args.quiet, preview=args.preview)
    n = sum(1 for _ in open(manifest, encoding="utf-8")) - 1
    print(f"wrote {n} clips from {config.subjects} subject(s) to {manifest}")
    return 0
