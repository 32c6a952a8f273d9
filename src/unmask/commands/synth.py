"""``unmask synth OUT``: write a synthetic set with known ground truth (manifest, videos, AU annotations).

``--kind masked`` (default): masked expressions on cartoon faces drawn from AU intensities
(:mod:`unmask.data.synth`); ``--kind photo``: the same masked-expression paradigm on real face photos warped
around their detected landmarks, a second renderer (:mod:`unmask.data.photo_render`). ``--kind dfer``:
in-the-wild dynamic expressions in DFEW's layout (:mod:`unmask.data.synth_dfer`). ``--kind micro``:
micro-expressions (:mod:`unmask.data.synth_micro`).

``--kind masked`` (default): masked expressions, MFED-shaped (:mod:`unmask.data.synth`). ``--kind dfer``:
in-the-wild dynamic expressions in DFEW's layout (:mod:`unmask.data.synth_dfer`). ``--kind micro``:
micro-expressions (:mod:`unmask.data.synth_micro`).
"""

HELP = ("generate a synthetic dataset with known ground truth: masked expressions (default), in-the-wild "
        "dynamic expressions in DFEW's layout (--kind dfer) or micro-expressions (--kind micro)")


def _size(text: str) -> tuple[int, int]:
    import argparse

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}") from None
    return w, h


def add_arguments(p):
    p.add_argument("out", help="output folder (new or empty; or the same folder with the same options to resume)")
    p.add_argument("--kind", choices=("masked", "photo", "dfer", "micro"), default="masked",
                   help="masked: the MFED-shaped masked-expression set on cartoon faces (default); photo: the same on "
                        "real face photos from --faces, warped around their YuNet landmarks (224x256, 30 fps, Motion "
                        "JPEG); dfer: in-the-wild clips in DFEW's layout; micro: brief low-intensity AU movements "
                        "at 100 fps with an ambiguous class pair")
    p.add_argument("--faces", default=None, metavar="DIR",
                   help="--kind photo: folder of source faces (the project's shared/data/faces, or any photos)")
    p.add_argument("--subjects", type=int, default=None,
                   help="number of subjects (default 8 masked, 30 clips each; photo: every source face; dfer: "
                        "persons, 10; micro: 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same data (default 0)")
    p.add_argument("--size", type=_size, default=None, metavar="WxH",
                   help="frame size (default 320x240 masked, 224x256 photo, 160x120 dfer, 192x160 micro)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate (default 25 masked and dfer, 30 photo, 100 micro)")
    p.add_argument("--preset", choices=("default", "hard"), default="default",
                   help="default: leak 0.35, onset 1.0; hard: leak 0.15, onset 1.3 (explicit flags override)")
    p.add_argument("--leak", type=float, default=None,
                   help="upper-face residue of the true emotion at the apex, fraction of full intensity")
    p.add_argument("--onset-strength", type=float, default=None,
                   help="true emotion at the onset frame, fraction of full intensity")
    p.add_argument("--congruent", action="store_true", help="also the 6 congruent clips (true == disguised)")
    micro = p.add_argument_group("micro (--kind micro)")
    micro.add_argument("--clips", type=int, default=None, help="clips per subject (default 16)")
    micro.add_argument("--intensity", type=float, default=None, help="apex AU intensity, x a full action (default 0.4)")
    micro.add_argument("--duration", default=None, metavar="MIN,MAX", help="onset->offset seconds (default 0.2,0.5)")
    micro.add_argument("--ambiguous", type=float, default=None,
                       help="share of clips from the pair with the same AUs and other dynamics (default 0.5)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--preview", action="store_true", help="also write OUT/preview.png (onset and apex frames)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    d = p.add_argument_group("--kind dfer (defaults: unmask.data.synth_dfer.DferSynthConfig)")
    d.add_argument("--clips-per-class", type=int, default=None, help="clips per person and class (default 4)")
    d.add_argument("--rest-bias", type=float, default=None, help="resting-face expression, up to this x full (0.6)")
    d.add_argument("--dilution", type=_range, default=None, metavar="LO,HI",
                   help="fraction of a clip the expression occupies (default 0.25,0.45)")
    d.add_argument("--speech", type=float, default=None, help="probability of a speech span (default 0.6)")
    d.add_argument("--occluder", type=float, default=None, help="probability of a partial occluder (default 0.3)")


def _range(text: str) -> tuple[float, float]:
    import argparse

    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI such as 0.25,0.45, got {text!r}") from None
    return lo, hi


def run_dfer(args) -> int:
    from dataclasses import fields

    from unmask.data.synth_dfer import DferSynthConfig, generate_dfer

    given = {"persons": args.subjects, "seed": args.seed, "width": (args.size or (None, None))[0],
             "height": (args.size or (None, None))[1], "fps": args.fps, "clips_per_class": args.clips_per_class, "rest_bias": args.rest_bias,
             "dilution": args.dilution, "speech": args.speech, "occluder": args.occluder}
    known = {f.name for f in fields(DferSynthConfig)}
    config = DferSynthConfig(**{k: v for k, v in given.items() if v is not None and k in known})
    manifest = generate_dfer(args.out, config, workers=args.workers, progress=not args.quiet)
    n = sum(1 for _ in open(manifest, encoding="utf-8")) - 1
    print(f"wrote {n} clips of {config.persons} person(s) in DFEW's layout to {args.out}; manifest {manifest}")
    return 0


def run_micro(args) -> int:
    from dataclasses import fields

    from unmask.data.synth_micro import MicroConfig, generate_micro
    from unmask.errors import UnmaskError

    values = {"subjects": args.subjects, "seed": args.seed, "fps": args.fps, "clips": args.clips,
              "intensity": args.intensity, "ambiguous": args.ambiguous}
    if args.size:
        values.update(width=args.size[0], height=args.size[1])
    if args.duration:
        try:
            values["min_duration"], values["max_duration"] = (float(x) for x in args.duration.split(","))
        except ValueError:
            raise UnmaskError(f"--duration: expected MIN,MAX in seconds such as 0.2,0.5, got {args.duration!r}") from None
    config = MicroConfig(**{k: v for k, v in values.items() if v is not None and k in {f.name for f in fields(MicroConfig)}})
    manifest = generate_micro(args.out, config, workers=args.workers, progress=not args.quiet)
    n = sum(1 for _ in open(manifest, encoding="utf-8")) - 1
    print(f"wrote {n} micro-expression clips from {config.subjects} subject(s) to {manifest} "
          f"(ground truth in {manifest.parent / 'clips.csv'})")
    return 0


def run(args) -> int:
    if args.kind == "dfer":
        return run_dfer(args)
    from unmask.data.synth import SynthConfig, generate

    if args.kind == "micro":
        return run_micro(args)
    if args.kind == "photo":
        return _run_photo(args)
    if args.faces:
        from unmask.errors import UnmaskError

        raise UnmaskError("--faces is for --kind photo")
    size = args.size or (320, 240)
    config = SynthConfig.from_preset(
        args.preset, subjects=8 if args.subjects is None else args.subjects, seed=args.seed, width=size[0], height=size[1],
        fps=25.0 if args.fps is None else args.fps, leak=args.leak, onset_strength=args.onset_strength, congruent=args.congruent,
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
        raise UnmaskError("--workers and --preview are for --kind masked")
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
