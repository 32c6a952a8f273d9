"""``unmask synth OUT``: write the synthetic masked-expression set (manifest, videos, AU annotations).

``--kind face`` (default): cartoon faces drawn from AU intensities (:mod:`unmask.data.synth`);
``--kind photo``: real face photos warped around their detected landmarks (:mod:`unmask.data.photo_render`)."""

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
    p.add_argument("--kind", choices=("face", "photo"), default="face",
                   help="face: cartoon faces drawn from AUs (default); photo: real face photos from --faces, warped "
                        "around their YuNet landmarks (224x256, 30 fps, Motion JPEG)")
    p.add_argument("--faces", default=None, metavar="DIR",
                   help="--kind photo: folder of source faces (the project's shared/data/faces, or any photos)")
    p.add_argument("--subjects", type=int, default=None,
                   help="number of subjects, 30 masked clips each (default 8; --kind photo: every source face)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same data (default 0)")
    p.add_argument("--size", type=_size, default=None, metavar="WxH",
                   help="frame size (default 320x240; --kind photo 224x256)")
    p.add_argument("--fps", type=float, default=None, help="frame rate (default 25; --kind photo 30)")
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

    if args.kind == "photo":
        return _run_photo(args)
    if args.faces:
        from unmask.errors import UnmaskError

        raise UnmaskError("--faces is for --kind photo")
    args.subjects = 8 if args.subjects is None else args.subjects
    args.size = args.size or (320, 240)
    args.fps = args.fps or 25.0

    config = SynthConfig.from_preset(
        args.preset, subjects=args.subjects, seed=args.seed, width=args.size[0], height=args.size[1],
        fps=args.fps, leak=args.leak, onset_strength=args.onset_strength, congruent=args.congruent,
    )
    manifest = generate(args.out, config, workers=args.workers, progress=not args.quiet, preview=args.preview)
    n = sum(1 for _ in open(manifest, encoding="utf-8")) - 1
    print(f"wrote {n} clips from {config.subjects} subject(s) to {manifest}")
    return 0


def _run_photo(args) -> int:
    from unmask.data.photo_render import PhotoConfig, generate_photo
    from unmask.errors import UnmaskError

    if not args.faces:
        raise UnmaskError("--kind photo needs --faces DIR, a folder of face photos (e.g. shared/data/faces)")
    if args.workers != 1 or args.preview:
        raise UnmaskError("--workers and --preview are for --kind face")
    size = args.size or (224, 256)
    config = PhotoConfig.from_preset(
        args.preset, faces=args.faces, subjects=args.subjects or 0, seed=args.seed, width=size[0], height=size[1],
        fps=args.fps, leak=args.leak, onset_strength=args.onset_strength, congruent=args.congruent,
    )
    manifest = generate_photo(args.out, config, progress=not args.quiet)
    from unmask.data.manifest import read_manifest

    clips = read_manifest(manifest).clips
    print(f"wrote {len(clips)} clips from {len({c.subject for c in clips})} photographed subject(s) to {manifest}")
    return 0
