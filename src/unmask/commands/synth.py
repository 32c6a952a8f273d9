"""``unmask synth OUT``: write a synthetic set with known ground truth (manifest, videos, AU annotations).

``--kind`` names a kind registered in :mod:`unmask.synth` (``unmask.synth.list_kinds()``): ``masked``
(default), masked expressions on cartoon faces drawn from AU intensities (:mod:`unmask.synth.masked`);
``photo``, the same masked-expression paradigm on real face photos warped around their detected landmarks, a
second renderer (:mod:`unmask.synth.photo`); ``dfer``, in-the-wild dynamic expressions in DFEW's layout
(:mod:`unmask.synth.dfer`); ``micro``, micro-expressions (:mod:`unmask.synth.micro`). This command only
parses the options; the kind turns them into its generator's configuration.
"""

from __future__ import annotations

import argparse

HELP = ("generate a synthetic dataset with known ground truth: masked expressions (default), in-the-wild "
        "dynamic expressions in DFEW's layout (--kind dfer) or micro-expressions (--kind micro)")


def _size(text: str) -> tuple[int, int]:
    import argparse

    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}") from None
    return w, h


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="output folder (new or empty; or the same folder with the same options to resume)")
    from unmask.synth import list_kinds

    p.add_argument("--kind", choices=list_kinds(), default="masked",
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
    d = p.add_argument_group("--kind dfer (defaults: unmask.synth.dfer.DferSynthConfig)")
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


def run(args: argparse.Namespace) -> int:
    from unmask.synth import get_kind

    return get_kind(args.kind).run(args)
