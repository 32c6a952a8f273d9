"""The built-in synthetic kinds: each turns ``unmask synth`` arguments into its generator's configuration.

The generators are imported inside ``run``, so listing the kinds (``unmask --help``) imports no renderer.
"""

from __future__ import annotations

import argparse

from unmask.errors import UnmaskError
from unmask.synth._registry import SynthKind, register_kind


@register_kind
class Masked(SynthKind):
    name = "masked"
    help = "the MFED-shaped masked-expression set on cartoon faces (unmask.synth.masked)"

    def run(self, args: argparse.Namespace) -> int:
        from unmask.synth.masked import SynthConfig, generate

        if args.faces:
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


@register_kind
class Photo(SynthKind):
    name = "photo"
    help = "the masked-expression set on real face photos warped around their landmarks (unmask.synth.photo)"

    def run(self, args: argparse.Namespace) -> int:
        from unmask.data.manifest import read_manifest
        from unmask.synth.photo import PhotoConfig, generate_photo

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
        clips = read_manifest(manifest).clips
        print(f"wrote {len(clips)} clips from {len({c.subject for c in clips})} photographed subject(s) to {manifest}")
        return 0


@register_kind
class Dfer(SynthKind):
    name = "dfer"
    help = "in-the-wild dynamic expressions in DFEW's layout (unmask.synth.dfer)"

    def run(self, args: argparse.Namespace) -> int:
        from dataclasses import fields

        from unmask.synth.dfer import DferSynthConfig, generate_dfer

        given = {"persons": args.subjects, "seed": args.seed, "width": (args.size or (None, None))[0],
                 "height": (args.size or (None, None))[1], "fps": args.fps, "clips_per_class": args.clips_per_class,
                 "rest_bias": args.rest_bias, "dilution": args.dilution, "speech": args.speech, "occluder": args.occluder}
        known = {f.name for f in fields(DferSynthConfig)}
        config = DferSynthConfig(**{k: v for k, v in given.items() if v is not None and k in known})
        manifest = generate_dfer(args.out, config, workers=args.workers, progress=not args.quiet)
        n = sum(1 for _ in open(manifest, encoding="utf-8")) - 1
        print(f"wrote {n} clips of {config.persons} person(s) in DFEW's layout to {args.out}; manifest {manifest}")
        return 0


@register_kind
class Micro(SynthKind):
    name = "micro"
    help = "micro-expressions: brief low-intensity AU movements at 100 fps (unmask.synth.micro)"

    def run(self, args: argparse.Namespace) -> int:
        from dataclasses import fields

        from unmask.synth.micro import MicroConfig, generate_micro

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
