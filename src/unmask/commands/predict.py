"""``unmask predict CHECKPOINT INPUT... [--out results.csv|.json] [--annotate DIR]``: emotions of new faces.

Every row is a face in an image or a sampled video frame; for each video an overall label per task (class
probabilities averaged over its face rows: frames, or a clip model's windows) is printed, and with ``--out``
written to ``<out>.videos.csv|json``.

Exit status: 0 when every input was read and at least one face was found in each (an image, or any sampled
frame of a video); 1 when an input could not be read (missing, corrupt, unsupported, a video that fails part-way:
an error row and a line on stderr) or has no face at all (its ``face_found=False`` rows); 2 for a usage error
(bad checkpoint, unknown detector, bad option) before anything is predicted.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

HELP = "predict a trained model's tasks (DSID: the felt and the shown emotion) for every face in images and videos"
TABLE_COLUMNS = ["source", "frame", "face", "x", "y", "w", "h"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint.pt, a fold folder (runs/x/folds/s01), or a run with one fold")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="images, videos, or folders (searched recursively by extension)")
    p.add_argument("--out", help="write every row to a .csv or .json file (default: print a short table)")
    p.add_argument("--annotate", metavar="DIR", help="write copies with boxes and labels drawn (images, mp4 videos)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="videos: predict every N-th frame (default 1)")
    p.add_argument("--apex-search", action="store_true",
                   help="videos: add a row per face track at the frame where the displayed expression peaks "
                        "(largest feature change from the neutral start; apex=True)")
    p.add_argument("--onset", type=int, metavar="N",
                   help="models of onset-to-apex clips (MEDN, paradigm clip_flow): the onset frame index (0-based; "
                        "default 0, the first frame)")
    p.add_argument("--apex", type=int, metavar="N",
                   help="models of onset-to-apex clips: the apex frame index; default: searched, the first frame "
                        "after the onset whose face (registered onto the onset face by ECC, blurred) reaches 97%% of "
                        "the largest difference from the onset's, within 0.3 s (docs/medn.md)")
    p.add_argument("--sequence", action="store_true",
                   help="each folder INPUT is one video: a dataset's frame folder (e.g. CASME II's sub01/EP02_01f), "
                        "its images in the order of the numbers in their names; --onset/--apex are then those "
                        "numbers, as the coding sheets give them")
    p.add_argument("--detector", help="face detector: auto, yuface, haar or none (default: the checkpoint's; "
                   "auto when it was trained on manifest boxes)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--batch-size", type=int, default=32, help="faces per model pass (default 32)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: a bf16 copy of the backbone (faster on CPUs with bf16 units and on GPUs)")
    p.add_argument("--peer", action="append", default=[], metavar="NAME",
                   help="add an off-the-shelf model's prediction of the shown emotion beside ours: fer or facex "
                        "(repeatable; columns NAME_pred, NAME_conf, NAME_p_<emotion>; `unmask weights fetch NAME`)")
    p.add_argument("--no-calibration", action="store_true",
                   help="the raw softmax / sigmoid, without the temperatures fitted on the validation subjects")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import logging
    import sys
    from pathlib import Path

    import pandas as pd

    from unmask.predict import Predictor, video_summary, write_results
    from unmask.predict.render import annotate_all, onset_apex_text

    if args.every < 1:
        from unmask.errors import UnmaskError
        raise UnmaskError(f"--every must be at least 1 (got {args.every})")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device, detector=args.detector,
                                          precision=args.precision,
                                          batch_size=args.batch_size, peers=args.peer,
                                          calibrated=not args.no_calibration)
    if not predictor.detector_fallback:  # a fallback was already said, as a warning
        print(predictor.detector_note, file=sys.stderr)
    from unmask.commands._trust_text import trust_lines

    for line in trust_lines(predictor.trust):  # what the model was trained on, calibration, the warning
        print(line, file=sys.stderr)
    df = predictor.predict_paths(args.inputs, every=args.every, apex_search=args.apex_search,
                                 progress=not args.no_progress, onset=args.onset, apex=args.apex,
                                 sequences=args.sequence)
    for err in df.loc[df.error != "", "error"]:
        print(f"error: {err}", file=sys.stderr)
    failed = failed_sources(df)
    no_face = sorted(set(failed) - set(df.loc[df.error != "", "source"]))
    for src in no_face:
        print(f"no face found: {src}", file=sys.stderr)
    if args.annotate:
        annotate_all(df, Path(args.annotate), predictor.tasks, every=args.every)
    if args.out:
        print(f"{len(df)} rows -> {write_results(df, args.out)}")
    else:
        per_task = [c for t in predictor.tasks for c in (f"{t.name}_pred", f"{t.name}_conf")]
        per_task += [f"{p.name}_{k}" for p in predictor.peers for k in ("pred", "conf")]  # --peer: beside ours
        table = df[TABLE_COLUMNS[:3] + (["apex"] if df.apex.any() else []) + TABLE_COLUMNS[3:] + per_task
                   + ["ood_score", "unlike_training", "error"]].copy()
        from unmask.commands._trust_text import table_flags

        table = table_flags(table, predictor.trust)  # unlike_training -> "unlike", the warning beside each reading
        table["source"] = table["source"].map(lambda s: Path(s).name)
        for c in [c for c in per_task if c.endswith("_conf")]:
            table[c] = table[c].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
        table = table.astype(object).where(table.notna(), "")  # no face: blank, not <NA>
        with pd.option_context("display.max_colwidth", 60, "display.width", 200):
            print(table.to_string(index=False))
    if predictor.onset_apex:  # one row per video: every class's and every AU's probability
        for r in df[df.face_found].to_dict("records"):
            print(onset_apex_text(r, predictor.tasks), file=sys.stderr)
    videos = video_summary(df, predictor.tasks)
    for v in videos.to_dict("records"):  # the overall label of each video, from its frames or windows
        labels = " | ".join(f"{t.title}: {v[f'{t.name}_pred'] or '-'} {v[f'{t.name}_conf']:.2f}" for t in predictor.tasks
                            if f"{t.name}_pred" in v)
        from unmask.commands._trust_text import video_note

        print(f"overall {Path(v['source']).name} ({v['faces']} face rows): {labels}"
              + video_note(df, v["source"], predictor.trust), file=sys.stderr)
    if args.out and len(videos):
        out = Path(args.out)
        print(f"{len(videos)} video(s) -> {write_results(videos, out.with_name(f'{out.stem}.videos{out.suffix}'))}")
    n_src = df.source.nunique()
    print(f"{n_src} input(s), {int(df.face_found.sum())} face(s) classified; {len(failed)} input(s) unread or "
          "without a face", file=sys.stderr)
    return 1 if failed else 0


def failed_sources(df: pd.DataFrame) -> list[str]:
    """Inputs that count against the exit status: an error row, or no row with a face."""
    ok = df.groupby("source").apply(lambda g: (g.error == "").all() and g.face_found.any(),  # type: ignore[call-overload]
                                    include_groups=False)
    return sorted(ok.index[~ok.astype(bool)])
