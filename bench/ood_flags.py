"""How often a checkpoint says "this face is unlike the faces the model was trained on" (docs/trust.md).

For a fold's checkpoint (trained by ``unmask demo`` or ``unmask train``), the share of faces flagged by the
Mahalanobis score it stores (threshold: the 95th percentile of its validation subjects' faces):

* the real photos of ``../shared/data/faces`` (every ``*.jpg`` with a face);
* the real videos there (every ``--every``-th frame of each ``.mp4`` / ``.mov`` with a face);
* the fold's held-out synthetic test subject: (a) its prepared crops, as training and the threshold saw them
  (the boxes of the synthetic annotations), and (b) its videos through ``unmask predict`` (the detector's boxes),
  every ``--every``-th frame.

For a clip model (IFDD, MEDN) every row is a window or a clip instead of a face. Deterministic: the same
checkpoint and files give the same output (CPU, fp32).

    python bench/ood_flags.py /tmp/demo22/run/folds/s02 [--every 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from realface_photos import faces_dir  # noqa: E402  (bench/ is this script's folder: one lookup of the faces)

ROOT = Path(__file__).resolve().parent.parent


def share(rows) -> str:
    n, k = len(rows), int(rows.unlike_training.sum())
    return f"{k}/{n} = {k / n:.1%}" if n else "0/0"


def prepared_crops(predictor, prepared: Path, subject: str):
    """The test subject's prepared crops (uint8 [N, H, W, 3]; a clip model: [N, T, H, W, 3])."""
    import numpy as np

    from unmask.data.prepare import PreparedSet

    ps = PreparedSet(prepared)
    clips = [c for c in ps.manifest.clips if c.subject == subject and c.clip_id in set(ps.clip_ids())]
    paradigm = predictor.ckpt["preprocess"].get("paradigm")
    if predictor.clip_frames:
        crops = [ps.load_clip(c.clip_id)[:predictor.clip_frames] for c in clips]
    else:
        crops = [ps.load(c.clip_id, paradigm) for c in clips]
    return np.stack(crops) if crops else np.zeros((0, 1, 1, 3), np.uint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a fold folder (runs/demo/run/folds/s02) or its checkpoint.pt")
    ap.add_argument("--every", type=int, default=8, help="video frames: every N-th (default 8)")
    args = ap.parse_args(argv)

    import pandas as pd
    import torch

    from unmask.predict import Predictor, resolve_checkpoint_path

    torch.set_num_threads(min(2, torch.get_num_threads()))
    path = resolve_checkpoint_path(args.checkpoint)
    p = Predictor.from_checkpoint(path, device="cpu")
    faces = faces_dir()
    s = p.trust.summary()
    print(f"checkpoint: {path.parent.name} ({p.ckpt['model_args'].get('name')}); {s['trained_on'].split('; manifest')[0]}")
    print(s["ood"])
    if p.trust.scorer is None:
        print("no unlike-training statistics in this checkpoint (trained before they were recorded)")
        return 1
    print(f"validation subjects' faces above the threshold: {p.trust.scorer.extra.get('val_flagged', float('nan')):.1%}"
          f" of {p.trust.scorer.extra.get('n_val')}")
    photos = p.predict_paths(sorted(faces.glob("*.jpg")))
    photos = photos[photos.face_found]
    print(f"real photos ({faces.name}/*.jpg, faces found): {share(photos)} flagged")
    videos = sorted(v for v in faces.iterdir() if v.suffix.lower() in (".mp4", ".mov"))
    frames = p.predict_paths(videos, every=args.every)
    frames = frames[frames.face_found & ~frames.apex]
    for src, g in frames.groupby("source", sort=True):
        print(f"  {Path(src).name}: {share(g)} flagged")
    print(f"real video frames (every {args.every}th, faces found): {share(frames)} flagged")

    fold = path.parent
    test = json.loads((fold / "metrics.json").read_text())["test"] if (fold / "metrics.json").is_file() else []
    prepared = (p.ckpt.get("config") or {}).get("data", {}).get("prepared")
    for subject in test:
        if p.onset_apex:  # its input is the onset-to-apex clip with its flow, made from the video (b) only
            pass
        elif prepared and Path(prepared).is_dir():
            crops = prepared_crops(p, Path(prepared), subject)
            flags = p.trust.scorer.flags(p.predict_crops(crops)["ood"]) if len(crops) else []
            k = int(sum(flags))
            print(f"held-out synthetic subject {subject}, prepared crops: {k}/{len(flags)} = "
                  f"{k / max(len(flags), 1):.1%} flagged")
        manifest = (p.trust.provenance.get("manifest") or {}).get("path")
        if manifest and Path(manifest).is_file():
            m = pd.read_csv(manifest)
            clips = sorted({(Path(manifest).parent / v) for v in m.loc[m.subject.astype(str) == subject, "video"]})
            rows = p.predict_paths([c for c in clips if c.exists()], every=args.every)
            rows = rows[rows.face_found & ~rows.apex]
            print(f"held-out synthetic subject {subject}, its videos (every {args.every}th frame, detector boxes): "
                  f"{share(rows)} flagged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
