"""Throughput of ``unmask predict`` on CPU: faces per second for detection + crop + model, measured apart.

    python bench/predict_throughput.py [--quick] [--threads 2] [--faces DIR]

Frames: the real face fixtures (``../shared/data/faces``: three photos and every 3rd frame of
single_face.mp4; with ``--quick`` every 9th). Stage 1 runs the face detector (``auto``) and crops every
face at 224 px (the paper's crop size); stage 2 runs a DSID model on the crops through
:meth:`unmask.predict.Predictor.predict_crops` (resize, normalise, backbone, heads), in batches of
``--batch-size``. Models: ``tiny_resnet`` (64 px, the CPU demo's) and, unless ``--quick``, a random-init
``clip_vit_b16`` DSID (weights do not change the cost) in fp32 and with bf16 autocast. Each model is warmed
up on one batch first. The last line, ``faces_per_s: X``, is the end-to-end rate (detector + model) of the
fastest clip_vit_b16 precision, or with ``--quick`` of the tiny model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from unmask.data.faces import create_detector, crop_face  # noqa: E402
from unmask.data.video import iter_frames  # noqa: E402
from unmask.emotions import EMOTIONS  # noqa: E402
from unmask.models import create_model  # noqa: E402
from unmask.predict import Predictor, read_image  # noqa: E402

# as tests/conftest.py: beside the project's root, or UNMASK_FACES_DIR (e.g. for a git worktree elsewhere)
FACES = Path(os.environ.get("UNMASK_FACES_DIR") or Path(__file__).resolve().parents[2] / "shared/data/faces")


def frames(faces: Path, every: int) -> list[np.ndarray]:
    out = [read_image(faces / n) for n in ("single_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg")]
    return out + [rgb for _, rgb in iter_frames(faces / "single_face.mp4", every=every)]


def detect_and_crop(images, crop_size: int) -> tuple[np.ndarray, float, float]:
    det = create_detector("auto")
    det.detect(images[0])  # warm-up
    t0 = time.perf_counter()
    found = [(img, det.detect(img)) for img in images]
    t1 = time.perf_counter()
    crops = [crop_face(img, d.box, margin=0.2, size=crop_size) for img, ds in found for d in ds]
    t2 = time.perf_counter()
    return np.stack(crops), t1 - t0, t2 - t1


def predictor(backbone: str, precision: str, batch_size: int, **kw) -> Predictor:
    torch.manual_seed(0)
    model = create_model("dsid", backbone=backbone, weights=None, **kw).eval()
    cfg = model.data_config
    ckpt = {"labels": list(EMOTIONS), "preprocess": {
        "input_size": list(cfg["input_size"]), "mean": list(cfg["mean"]), "std": list(cfg["std"]),
        "detector": "auto", "margin": 0.2, "crop_size": 224}}
    return Predictor(model, ckpt, device=torch.device("cpu"), detector="haar", batch_size=batch_size,
                     precision=precision)


def time_model(p: Predictor, crops: np.ndarray) -> float:
    p.predict_crops(crops[: p.batch_size])  # warm-up (allocations, oneDNN kernels)
    t0 = time.perf_counter()
    p.predict_crops(crops)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer frames, tiny model only")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--faces", type=Path, default=FACES, help="the face fixtures folder")
    args = ap.parse_args(argv)
    if not args.faces.is_dir():
        print(f"face fixtures not found at {args.faces}; pass --faces DIR", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    images = frames(args.faces, 9 if args.quick else 3)
    crops, det_s, crop_s = detect_and_crop(images, 224)
    n = len(crops)
    print(f"{len(images)} frames, {n} faces; CPU, {args.threads} torch threads, batch {args.batch_size}")
    print(f"detector: {det_s / len(images) * 1000:.1f} ms/frame, crop: {crop_s / n * 1000:.2f} ms/face")
    configs = [("tiny_resnet", "fp32", {"img_size": 64})]
    if not args.quick:
        configs += [("clip_vit_b16", "fp32", {}), ("clip_vit_b16", "bf16", {})]
    rows = []
    for backbone, precision, kw in configs:
        model_s = time_model(predictor(backbone, precision, args.batch_size, **kw), crops)
        rows.append((backbone, precision, n / model_s, n / (det_s + crop_s + model_s)))
    print(f"{'model':<14}{'precision':<11}{'model faces/s':>15}{'end-to-end faces/s':>20}")
    for backbone, precision, model_rate, total_rate in rows:
        print(f"{backbone:<14}{precision:<11}{model_rate:>15.1f}{total_rate:>20.1f}")
    clip = [r for r in rows if r[0] == "clip_vit_b16"]
    headline = max(clip, key=lambda r: r[3]) if clip else rows[0]
    print(f"faces_per_s: {headline[3]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
