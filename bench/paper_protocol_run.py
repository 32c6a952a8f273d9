"""Time the real ``unmask reproduce all`` at paper settings on an MFED-sized synthetic set, on this machine.

The issue's target: 22 subjects x 30 masked clips, the paper's settings (configs/dsid_paper.yaml: 200 epochs,
patience 50, batch 32, frozen ViT-B/16 / CLIP ViT-B/16 / ResNet18 backbones, features cached with
``features.views`` views), every table, in under one hour including feature extraction.

Pretrained weights cannot be downloaded here, so the backbones get randomly initialised weights saved in the
libraries' own formats (open_clip and timm state dicts): the same cost per image as pretrained weights. The
accuracies printed by such a run mean nothing; only the time does.

    python bench/paper_protocol_run.py --out /tmp/paper [--prepared DIR] [--jobs 1] [--views 4]

Without ``--prepared`` it first makes the data (``unmask synth --subjects 22`` and ``unmask prepare``, not
timed: about 3 and 7 minutes here). A rerun with the same ``--out`` resumes (``reproduce`` skips finished runs),
so only a fresh ``--out`` measures the whole protocol.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))


def unmask(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    code = subprocess.run([sys.executable, "-m", "unmask", *args], env=env).returncode
    if code:  # unmask has printed its one-line error
        sys.exit(code)


def weight_files(folder: Path) -> dict[str, Path]:
    """Random-init weights of the three paper backbones, as the libraries save them."""
    import open_clip
    import timm
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    files = {"clip_vit_b16": folder / "open_clip_ViT-B-16.bin", "vit_b16": folder / "vit_base_patch16_224.pth",
             "resnet18": folder / "resnet18.pth"}
    torch.manual_seed(0)
    if not files["clip_vit_b16"].is_file():
        torch.save(open_clip.create_model("ViT-B-16").state_dict(), files["clip_vit_b16"])
    for name, arch in (("vit_b16", "vit_base_patch16_224"), ("resnet18", "resnet18")):
        if not files[name].is_file():
            torch.save(timm.create_model(arch).state_dict(), files[name])
    return files


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--prepared", type=Path, help="a prepared 22-subject synthetic set (else made under OUT/data)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--views", type=int, help="features.views (default: the paper config's)")
    a = p.parse_args(argv)

    prepared = a.prepared
    if prepared is not None and not (prepared / "prepare.json").is_file():  # before writing 600 MB of weights
        sys.exit(f"error: --prepared {prepared} is not a folder written by `unmask prepare`")
    if prepared is None:
        data = a.out / "data"
        if not (data / "synth" / "manifest.csv").is_file():
            unmask("synth", str(data / "synth"), "--subjects", "22", "--quiet")
        unmask("prepare", str(data / "synth" / "manifest.csv"), "--out", str(data / "prepared"), "--no-progress")
        prepared = data / "prepared"
    files = weight_files(a.out / "weights")
    args = ["reproduce", "all", "--prepared", str(prepared), "--out", str(a.out / "reproduce"), "--jobs", str(a.jobs)]
    for name, path in files.items():
        args += ["--weights", f"{name}={path}"]
    if a.views:
        args.append(f"features.views={a.views}")
    t0 = time.perf_counter()
    unmask(*args)
    wall = time.perf_counter() - t0
    import torch

    print(f"machine: {os.cpu_count()} CPU(s), torch {torch.__version__}, --jobs {a.jobs}"
          f"{f', features.views={a.views}' if a.views else ''}")
    print(f"reproduce all at paper settings (22 subjects x 30 clips, every table): {wall / 60:.1f} min "
          f"(target: under 60 min)")


if __name__ == "__main__":
    main()
