"""``unmask serve CHECKPOINT [--host 127.0.0.1] [--port 7860]``: try a trained model in a web browser.

Listens on the loopback interface unless ``--host`` says otherwise (``--host 0.0.0.0`` opens it to the
network: anyone who reaches the port can upload files to be analysed). Needs the ``serve`` extra.
"""

from __future__ import annotations

import argparse

HELP = "a web page to try a trained model on images, videos and webcam stills"

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint.pt, a fold folder (runs/x/folds/s01), or a run with one fold")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload in MB (default 50)")
    p.add_argument("--max-video-s", type=float, default=120.0, help="longer videos are refused (default 120)")
    p.add_argument("--max-frames", type=int, default=300,
                   help="videos with more frames are sampled evenly down to about this many (default 300)")
    p.add_argument("--max-jobs", type=int, default=4,
                   help="uploads waiting or running at once; more are refused until one ends (default 4)")
    p.add_argument("--detector", help="face detector: auto, yuface, haar or none (default: the checkpoint's)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--peer", action="append", default=[], metavar="NAME",
                   help="show an off-the-shelf model's shown-emotion bars beside ours: fer or facex (repeatable; "
                        "`unmask weights fetch NAME`)")
    p.add_argument("--no-calibration", action="store_true",
                   help="show the raw softmax, without the temperatures fitted on the validation subjects")


def run(args: argparse.Namespace) -> int:
    import importlib.util
    import logging
    import sys

    from unmask.errors import UnmaskError

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UnmaskError(f"unmask serve needs {' and '.join(missing)} (the 'serve' extra): "
                          "pip install 'unmask[serve]'")

    from unmask.predict import Predictor, resolve_checkpoint_path
    from unmask.serve.analysis import Limits
    from unmask.serve.app import serve

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    limits = Limits(max_upload_mb=args.max_upload_mb, max_video_s=args.max_video_s, max_frames=args.max_frames,
                    max_jobs=args.max_jobs)
    path = resolve_checkpoint_path(args.checkpoint)
    predictor = Predictor.from_checkpoint(path, device=args.device, detector=args.detector, peers=args.peer,
                                          calibrated=not args.no_calibration)
    # the page names the model by its run folder and fold, never by a full server path
    where = f"{path.parents[2].name}/{path.parent.name}" if path.parent.parent.name == "folds" else path.name
    name = f"{predictor.ckpt['model_args'].get('name', 'model')} ({where})"
    if args.host not in LOOPBACK:
        print(f"warning: listening on {args.host}: other machines can reach this page and upload files",
              file=sys.stderr)
    print(f"unmask serve: http://{args.host}:{args.port}/ ({predictor.detector_note}); Ctrl+C stops it",
          file=sys.stderr)
    from unmask.commands._trust_text import trust_lines

    for line in trust_lines(predictor.trust):
        print(line, file=sys.stderr)
    serve(predictor, args.host, args.port, limits, name)
    return 0
