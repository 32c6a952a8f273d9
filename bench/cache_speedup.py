"""LOSO on the synthetic set twice in one run: frozen backbone via the image path vs cached features.

Same data, same folds, same epochs (patience = epochs, so early stopping cannot make them differ), same seed.
The image path (``features.cache=never``) runs every training and validation image through the frozen backbone
in every epoch (fp32 on the CPU: the engine's autocast is CUDA-only). The cached path (``features.cache=always``)
extracts V views once (bf16 where supported, ``features.precision=auto``) into an empty cache folder -- the
extraction is timed and charged to it -- then trains the heads on the features. Loading the frames (PNG
decode, resize) is done once and charged to neither.

Both paths train as ``unmask train`` does: the image path fold by fold, the cached path all folds at once as
one stack (a fold's times are then its share of the stack's). Per fold it prints the wall time of training
(model build, epochs, test predictions, checkpoint) and the time of the epoch loop alone (training +
validation, the ``seconds`` column of log.csv); the head-training ratio is image-path epoch loop / cached
epoch loop. The last line is ``speedup: X``, the image path's total
time over the cached path's total time (extraction included).

    python bench/cache_speedup.py --quick              # resnet18 (random init, 224 px), 3 subjects, 3 folds, 3 epochs
    python bench/cache_speedup.py                      # vit_b16 (random init), 3 subjects, 1 fold, 2 epochs
    python bench/cache_speedup.py --data /tmp/synth3   # reuse a generated + prepared set
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import pandas as pd  # noqa: E402
import torch  # noqa: E402


def synthetic_prepared(root: Path, subjects: int) -> Path:
    """Generate (if needed) ``subjects`` synthetic subjects into ``root/synth`` and prepare them."""
    from unmask.data.prepare import prepare
    from unmask.synth.masked import SynthConfig, generate

    prepared = root / "prepared"
    if not (prepared / "prepare.json").is_file() or not (root / "synth" / "manifest.csv").is_file():
        manifest = generate(root / "synth", SynthConfig(subjects=subjects), progress=False)
        result = prepare(manifest, prepared, detector="annotated", masked_only=True, progress=False)
        print(f"synthetic set: {result.summary()}")
    return prepared


def run_way(cfg, folds, data, out: Path, *, cached: bool) -> dict:
    from unmask.train.engine import build_model, fit_folds
    from unmask.train.features import cached_features

    res = {"extract": 0.0, "folds": {}}
    features = None
    if cached:
        torch.manual_seed(cfg.runtime.seed)
        model = build_model(cfg, data.tasks)
        t0 = time.perf_counter()
        features = cached_features(cfg, data, model.backbone, out / "cache", progress=False)
        res["extract"] = time.perf_counter() - t0
        res["features"] = tuple(features.shape)
        del model
    # as `unmask train` trains them: the image path fold by fold, cached features all folds as one stack
    groups = [folds] if cached else [[f] for f in folds]
    for group in groups:
        t0 = time.perf_counter()
        fit_folds(cfg, group, data, [out / f.name for f in group], features=features, progress=False)
        wall = (time.perf_counter() - t0) / len(group)  # a fold's share of its stack
        for fold in group:
            epochs = pd.read_csv(out / fold.name / "log.csv")["seconds"]  # the fold's share of each epoch
            res["folds"][fold.name] = {"wall": wall, "loop": float(epochs.sum()), "epochs": len(epochs)}
    res["total"] = res["extract"] + sum(f["wall"] for f in res["folds"].values())
    return res


def main(argv=None) -> float:
    from unmask.config import load_config
    from unmask.data.datasets import load_frames
    from unmask.data.prepare import PreparedSet
    from unmask.train.engine import build_model
    from unmask.train.protocols import make_folds

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="resnet18, 3 folds, 3 epochs: a few minutes on 2 cores")
    p.add_argument("--data", default="", help="folder for the synthetic set (reused when already prepared)")
    p.add_argument("--subjects", type=int, default=3)
    p.add_argument("--backbone", default=None, help="default: resnet18 with --quick, else vit_b16")
    p.add_argument("--img-size", type=int, default=None, help="tiny backbones only")
    p.add_argument("--epochs", type=int, default=None, help="default: 3 with --quick, else 2")
    p.add_argument("--folds", type=int, default=None, help="how many LOSO folds (default: all with --quick, else 1)")
    p.add_argument("--views", type=int, default=4)
    a = p.parse_args(argv)
    backbone = a.backbone or ("resnet18" if a.quick else "vit_b16")
    epochs = a.epochs or (3 if a.quick else 2)
    n_folds = a.folds or (a.subjects if a.quick else 1)

    with tempfile.TemporaryDirectory(prefix="unmask-bench-") as tmp:
        root = Path(a.data) if a.data else Path(tmp) / "data"
        prepared = PreparedSet(synthetic_prepared(root, a.subjects))
        overrides = [f"model.backbone={backbone}", "model.weights=null", "model.mode=frozen",
                     f"optim.epochs={epochs}", f"optim.patience={epochs}", f"features.views={a.views}",
                     "runtime.device=cpu", f"data.prepared={prepared.root}"]
        if a.img_size:
            overrides.append(f"model.backbone_args.img_size={a.img_size}")
        cfg_img = load_config(None, overrides + ["features.cache=never"])
        cfg_cache = load_config(None, overrides + ["features.cache=always"])
        size = build_model(cfg_img, prepared.manifest.tasks).data_config["input_size"][-1]
        t0 = time.perf_counter()
        data = load_frames(prepared, cfg_img.data.paradigm, size=size)
        load_s = time.perf_counter() - t0
        folds = make_folds(data.subjects, seed=cfg_img.runtime.seed)[:n_folds]
        print(f"backbone {backbone} (random init, frozen, {size}px), {len(data)} images of "
              f"{len(set(data.subjects))} subjects (frames loaded once in {load_s:.1f} s, charged to neither), "
              f"{len(folds)} LOSO fold(s), {epochs} epochs each, {torch.get_num_threads()} threads; cached: "
              f"{a.views} views, precision {cfg_cache.features.precision}; image path: fp32")
        img = run_way(cfg_img, folds, data, Path(tmp) / "image", cached=False)
        cached = run_way(cfg_cache, folds, data, Path(tmp) / "cached", cached=True)

    print(f"extraction (cached path): {cached['extract']:.1f} s for features {list(cached['features'])}")
    ratios = []
    for name in img["folds"]:
        i, c = img["folds"][name], cached["folds"][name]
        ratios.append(i["loop"] / c["loop"])
        print(f"fold {name}: image path {i['wall']:.1f} s (epoch loop {i['loop']:.2f} s) | cached {c['wall']:.1f} s "
              f"(epoch loop {c['loop']:.3f} s) | head training from cache vs image path: {ratios[-1]:.0f}x faster "
              f"({i['epochs']} epochs each)")
    print(f"head training per fold, cache vs image path: {min(ratios):.0f}x to {max(ratios):.0f}x faster "
          f"(mean {sum(ratios) / len(ratios):.0f}x)")
    print(f"image path total {img['total']:.1f} s; cached total {cached['total']:.1f} s "
          f"(extraction {cached['extract']:.1f} s + folds {cached['total'] - cached['extract']:.1f} s)")
    speedup = img["total"] / cached["total"]
    print(f"speedup: {speedup:.2f}")
    return speedup


if __name__ == "__main__":
    main()
