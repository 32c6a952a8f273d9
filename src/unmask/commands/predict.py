"""``unmask predict CHECKPOINT INPUT... [--out results.csv|.json] [--annotate DIR]``: emotions of new faces.

Every row is a face in an image or a sampled video frame; for each video an overall label per task (class
probabilities averaged over its face rows: frames, or a clip model's windows) is printed, and with ``--out``
written to ``<out>.videos.csv|json``.

Exit status: 0 when every input was read and at least one face was found in each (an image, or any sampled
frame of a video); 1 when an input could not be read (missing, corrupt, unsupported, a video that fails part-way:
an error row and a line on stderr) or has no face at all (its ``face_found=False`` rows); 2 for a usage error
(bad checkpoint, unknown detector, bad option) before anything is predicted.
"""

HELP = "predict a trained model's tasks (DSID: the felt and the shown emotion) for every face in images and videos"
TABLE_COLUMNS = ["source", "frame", "face", "x", "y", "w", "h"]


def add_arguments(p):
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


def run(args) -> int:
    import logging
    import sys
    from pathlib import Path

    import pandas as pd

    from unmask.predict import Predictor, video_summary, write_results

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


def onset_apex_text(row, tasks) -> str:
    """``clip.mp4: onset 7, apex 24 (searched, score 1.55) | emotion: happiness 0.81 (happiness 0.81, ...) | ...``
    (a multi-label task: the labels at >= 0.5, as the report thresholds them, then every label's probability)."""
    from pathlib import Path

    how = f"searched, score {row['apex_score']:.3f}" if row["apex_from"] == "search" else "given"
    parts = [f"{Path(row['source']).name}: onset {row['onset']}, apex {row['frame']} ({how})"]
    for t in tasks:
        probs = ", ".join(f"{x} {row[f'{t.name}_p_{x}']:.2f}" for x in t.labels)
        parts.append(f"{t.title}: {row[f'{t.name}_pred'] or '-'} ({probs})")
    return " | ".join(parts)


def failed_sources(df) -> list[str]:
    """Inputs that count against the exit status: an error row, or no row with a face."""
    ok = df.groupby("source").apply(lambda g: (g.error == "").all() and g.face_found.any(), include_groups=False)
    return sorted(ok.index[~ok.astype(bool)])


# ------------------------------------------------------------------------------------------- annotation
def label_text(row, tasks) -> str:
    """``felt: fear 0.62 | shown: happiness 0.91``: each task's title, prediction and confidence."""
    return " | ".join(f"{t.title}: {row[f'{t.name}_pred']} {row[f'{t.name}_conf']:.2f}" for t in tasks
                      if row.get(f"{t.name}_pred"))


def draw(rgb, rows, tasks):
    """Boxes and labels drawn on a copy of ``rgb`` (OpenCV); scale follows the image size."""
    import cv2

    img = rgb.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    thick = max(1, round(2 * scale))
    faces = [r for r in rows if r["face_found"]]
    if not faces:
        _text(img, "no face", 5, 5, scale, thick, (200, 200, 200))
    for r in faces:
        x, y, bw, bh = (int(r[k]) for k in ("x", "y", "w", "h"))
        colour = (40, 220, 40)
        cv2.rectangle(img, (x, y), (x + bw, y + bh), colour, thick + 1)
        (_, th), _ = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y - th - 12 if y - th - 12 >= 0 else min(y + bh + 4, h - th - 8)  # above the box, else below
        _text(img, label_text(r, tasks), x, ty, scale, thick, colour)
    return img


def _text(img, text, x, y, scale, thick, colour):
    """Text on a dark filled band, kept inside the image (long labels shift left)."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x = max(0, min(x, img.shape[1] - tw - 8))
    y = max(0, y)
    cv2.rectangle(img, (x, y), (x + tw + 8, y + th + base + 8), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 4, y + th + 4), font, scale, colour, thick, cv2.LINE_AA)


def _unique(path):
    n, out = 1, path
    while out.exists():
        out = path.with_name(f"{path.stem}_{n}{path.suffix}")
        n += 1
    return out


def annotate_all(df, out_dir, tasks, every: int = 1) -> list:
    """One annotated copy per readable input in ``out_dir``: ``<name>.annotated.<ext>`` (videos: ``.mp4``)."""
    from pathlib import Path

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src, g in df[(df.error == "") & ~df.apex].groupby("source", sort=False):
        path = Path(src)
        if g.kind.iloc[0] == "image":
            written.append(annotate_image(path, g.to_dict("records"), tasks, _unique(out_dir / f"{path.stem}.annotated{path.suffix.lower()}")))
        elif g.kind.iloc[0] == "video":
            written.append(annotate_video(path, g, tasks, _unique(out_dir / f"{path.stem}.annotated.mp4")))
            if g.face_found.any():  # each class's probability over time (a clip model: per window)
                written.append(write_timeline(g, df[(df.source == src) & df.apex], tasks,
                                              _unique(out_dir / f"{path.stem}.timeline.png")))
    return written


def write_timeline(frames, apex, tasks, out):
    """The longest face track's probabilities per sampled frame as a PNG (the web app's timeline figure)."""
    from unmask.serve.analysis import timeline_series
    from unmask.serve.timeline import plot_timeline

    out.write_bytes(plot_timeline(tasks, timeline_series(tasks, frames, apex)))
    return out


def annotate_image(path, rows, tasks, out):
    import cv2

    from unmask.predict import read_image

    img = draw(read_image(path), rows, tasks)
    if not cv2.imwrite(str(out), img[:, :, ::-1]):
        from unmask.errors import UnmaskError
        raise UnmaskError(f"cannot write {out}")
    return out


def annotate_video(path, rows, tasks, out):
    """All frames re-encoded (H.264, even size); each shows the boxes of the latest sampled frame."""
    from unmask.data.video import header_fps, iter_frames, write_video

    by_frame = {int(f): g.to_dict("records") for f, g in rows.groupby("frame")}

    def frames():
        current: list = []
        for index, rgb in iter_frames(path):
            current = by_frame.get(index, current)
            yield draw(rgb, current, tasks) if current else rgb

    write_video(frames(), out, header_fps(path) or 25.0, crf=23)  # a preview, not an archive
    return out
