"""Peak memory of training on clips read lazily (``unmask.data.clips.ClipDataset``) vs holding them in memory.

Writes a prepared set of synthetic clips straight as PNG crops (no video rendering: the point is the loader,
not the pictures; each clip is a smooth picture with a moving blob, so the PNGs compress as face crops do),
then, in a fresh process so that nothing of the writing is counted, iterates it once through a
``DataLoader`` with worker processes feeding a small model's forward and backward pass. It prints the peak
resident memory (``ru_maxrss``) of the training process and of its largest worker, their sum over all workers
as an upper bound, and what the same clips would take as one in-memory uint8 stack
(``clips x frames x 3 x size x size`` bytes: 4.8 GB for the default 2,000 x 16 x 224 px). Target: under 3 GB.

    python bench/clip_memory.py                               # 2,000 clips x 16 frames at 224 px, 2 workers
    python bench/clip_memory.py --clips 200 --root /tmp/cm    # smaller; keep the set in /tmp/cm for a rerun
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import numpy as np  # noqa: E402

GB = 1e9


def _write_clip(root: Path, i: int, frames: int, size: int) -> None:
    import cv2

    rng = np.random.default_rng(i)
    folder = root / "clips" / f"c{i:05d}"
    if (folder / "meta.json").is_file():  # written last: the clip is complete from an earlier run
        return
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([xx * 200, yy * 200, (xx + yy) * 100], -1) + rng.uniform(0, 55, 3)  # [size, size, 3]
    start, step = rng.uniform(0.3, 0.7, 2), rng.uniform(-0.01, 0.01, 2)
    for t in range(frames):
        cx, cy = (start + t * step) * size
        blob = np.exp(-((xx * size - cx) ** 2 + (yy * size - cy) ** 2) / (2 * (size / 8) ** 2))[..., None]
        img = np.clip(base * (1 - blob) + 230 * blob, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"clip_{t:02d}.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    meta = {"clip_id": f"c{i:05d}", "frames": {"onset": 0, "apex": frames // 2, "offset": frames - 1,
                                               "clip": list(range(frames))}}
    (folder / "meta.json").write_text(json.dumps(meta))


def make_set(root: Path, clips: int, frames: int, size: int, workers: int) -> None:
    """A prepared-set folder (prepare.json, manifest.csv, clips/<id>/clip_XX.png + meta.json)."""
    from unmask.data.manifest import Clip, write_manifest
    from unmask.data.prepare import CACHE_VERSION
    from unmask.tasks import Task, tasks_to_list

    tasks = (Task("emotion", "single", ("a", "b", "c", "d", "e", "f")),)
    if (root / "prepare.json").is_file() and len(list((root / "clips").glob("*/meta.json"))) == clips:
        print(f"reusing {clips} clips in {root}")
        return
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_clip, [root] * clips, range(clips), [frames] * clips, [size] * clips, chunksize=50))
    write_manifest([Clip(f"c{i:05d}", f"s{i % 20:02d}", root / "none.mp4", {"emotion": "abcdef"[i % 6]}, 0,
                         frames // 2, frames - 1) for i in range(clips)], root / "manifest.csv", tasks)
    (root / "prepare.json").write_text(json.dumps({
        "version": CACHE_VERSION, "manifest": str(root / "manifest.csv"), "detector": "none", "size": size,
        "margin": 0.0, "clip_frames": frames, "tasks": tasks_to_list(tasks)}))
    mb = sum(p.stat().st_size for p in (root / "clips").rglob("*.png")) / 1e6
    print(f"wrote {clips} clips x {frames} PNG crops at {size} px ({mb:.0f} MB on disk) in {time.time() - t0:.0f} s")


def measure(root: Path, frames: int, size: int, batch: int, workers: int) -> None:
    """Runs in its own process: one pass of the loader through a small model, then the peak RSS."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from unmask.data.clips import ClipDataset
    from unmask.data.prepare import PreparedSet

    prepared = PreparedSet(root)
    ids = prepared.clip_ids()
    ds = ClipDataset(prepared, ids, frames=frames, size=size)
    torch.manual_seed(0)
    # per frame: a strided conv, pooled over space and time, a linear head; small so the loader is measured
    model = nn.Sequential(nn.Conv2d(3, 8, 8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    head = nn.Linear(8, 6)
    opt = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.01)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    t0, seen = time.time(), 0
    for index, x in loader:  # x: uint8 [B, T, 3, size, size]
        b, t = x.shape[:2]
        f = model(x.flatten(0, 1).float() / 255).view(b, t, -1).mean(1)  # [B, 8]
        loss = nn.functional.cross_entropy(head(f), index % 6)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += b
    seconds = time.time() - t0
    del loader  # the workers exit: their peak is now in RUSAGE_CHILDREN
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB  # Linux: kilobytes
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GB
    stack = len(ids) * frames * 3 * size * size / GB
    total = me + workers * child
    print(f"{seen} clips x {frames} frames at {size} px through the loader ({workers} workers, batch {batch}) "
          f"in {seconds:.0f} s")
    print(f"peak RSS: training process {me:.2f} GB, largest worker {child:.2f} GB; "
          f"process + {workers} workers <= {total:.2f} GB")
    print(f"in-memory uint8 stack of the same clips: {stack:.2f} GB; ratio {total / stack:.2f}; "
          f"target < 3 GB: {'met' if total < 3 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (and PNG writers)")
    ap.add_argument("--root", help="folder for the synthetic set (kept, reused); default: a temporary folder")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child process's part
    args = ap.parse_args()
    if args.measure:
        measure(Path(args.root), args.frames, args.size, args.batch, args.workers)
        return
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="clip_memory_"))
    try:
        make_set(root, args.clips, args.frames, args.size, args.workers)
        subprocess.run([sys.executable, __file__, "--measure", "--root", str(root), "--frames", str(args.frames),
                        "--size", str(args.size), "--batch", str(args.batch), "--workers", str(args.workers)],
                       check=True)
    finally:
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
