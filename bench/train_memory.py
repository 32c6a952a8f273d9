"""Peak memory of `unmask train` on a clip set too big to hold: the engine reads the crops lazily.

Makes (or reuses) the synthetic prepared set of ``bench/clip_memory.py`` (2,000 clips x 16 frames of 224 px
PNG crops: 4.8 GB as one uint8 stack), then runs ``unmask train`` on it in a child process: the ``multitask``
model on the clip paradigm over a frozen tiny ResNet at 224 px input (the frozen backbone's features are extracted
once, streamed from the crops by DataLoader workers, then the heads train on them; ``--mode finetune``: the image
path, every step decoding its clips, about 10x slower here), one LOSO fold, one epoch, ``data.lazy=auto`` with the
default ``data.memory_gb=4``. It prints the child's peak
resident memory (``ru_maxrss``) against the in-memory stack. Target: under 3 GB.

    python bench/train_memory.py                      # 2,000 clips, 16 frames, 224 px
    python bench/train_memory.py --clips 300 --root /tmp/tm
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from clip_memory import GB, make_set  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--mode", default="frozen", choices=("frozen", "finetune"))
    ap.add_argument("--root", help="folder for the synthetic set (kept, reused); default: a temporary folder")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="unmask-train-memory-") as tmp:
        root = Path(a.root) if a.root else Path(tmp) / "set"
        make_set(root, a.clips, a.frames, a.size, workers=2)
        shutil.rmtree(root / "features", ignore_errors=True)  # measure the extraction too, not a cache of it
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "unmask.cli", "train", "--config", "dsid_synth", f"data.prepared={root}",
               "data.paradigm=clip", "data.masked_only=false", "model.name=multitask", "model.backbone=tiny_resnet",
               "model.weights=null", f"model.mode={a.mode}", "features.views=1", f"model.backbone_args.img_size={a.size}",
               "model.args.multitask.adapter_dim=32", "optim.epochs=1", "optim.patience=1", "optim.batch_size=8",
               "augment.rotation=0", "runtime.threads=2", "--folds", "s00", "--out", str(out), "--quiet"]
        t0 = time.time()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
        subprocess.run(cmd, check=True, env=env)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GB  # Linux: kilobytes
        stack = a.clips * a.frames * 3 * a.size * a.size / GB
        print(f"unmask train ({a.mode} backbone): {a.clips} clips x {a.frames} frames at {a.size} px, one fold, one epoch, "
              f"{time.time() - t0:.0f} s")
        print(f"peak RSS of the training process: {peak:.2f} GB; the same clips as one uint8 stack: {stack:.2f} GB; "
              f"target < 3 GB: {'met' if peak < 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
