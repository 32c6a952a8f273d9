"""Wall-time estimate of ``unmask reproduce all`` at paper settings on this machine, from measured rates.

Paper settings: LOSO over 22 subjects x 30 masked clips = 660 apex (or onset) images, at most 200 epochs
(patience 50), frozen backbones, features cached once per distinct extraction with V views.

Measured here, in one run (random-init backbones cost the same as pretrained ones):
  * bf16 extraction rate (images/s) of vit_b16, clip_vit_b16 and resnet18 through ``features.extract``;
  * head training from cached features on a 660-image set, the 22 LOSO folds (20 training subjects,
    1 validation subject each) trained at once as one stack, as ``unmask train`` does: seconds per
    fold-epoch for single_stream on vit_b16 (D=768) and DSID on clip_vit_b16 (D=512), and the time per run
    outside the epoch loops (test predictions, checkpoints); DSID one fold at a time, for the ratio;
  * the image path's rate (fp32 + augmentation through the frozen ViT-B/16) for the cached-vs-image ratio.

Counted from the tables (src/unmask/configs/experiments/*.yaml; runs shared between tables run once):
  extractions: vit_b16 apex, vit_b16 onset, clip_vit_b16 apex, resnet18 apex = 4 (x 660 x V images);
  runs: Table I 4 (vit_b16 single-stream, apex/onset x TER/DER), II 2 (DSID alpha 0 and 0.5), III 5 and
  IV 5 (the alpha/beta sweeps minus the shared alpha=0.5, beta=1 run), V 2 (resnet18, CLIP) = 18 runs,
  each 22 folds.

    python bench/paper_protocol_estimate.py [--epochs-measured 4] [--n 16] [--views 1,2,4,8]
    python bench/paper_protocol_estimate.py --profile    # the DSID stack's matmul share and GFLOP/s
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

SUBJECTS, CLIPS = 22, 30
EXTRACTIONS = {"vit_b16": 2, "clip_vit_b16": 1, "resnet18": 1}  # apex+onset, apex, apex
RUNS = {"single_stream": 4 + 2, "dsid": 2 + 5 + 5}  # Table I + V's resnet18/CLIP ; Tables II-IV
EPOCHS_MAX, HOUR = 200, 3600.0


def paper_sized_data():
    """660 apex items of 22 subjects with the 30 masked (true, disguised) pairs each; tiny placeholder images
    (the cached path never reads them)."""
    from unmask.data.datasets import FrameData
    from unmask.emotions import EMOTIONS, MFED_TASKS, masked_pairs

    pairs = masked_pairs()
    n = SUBJECTS * CLIPS
    true = torch.tensor([EMOTIONS.index(pairs[i % CLIPS][0]) for i in range(n)])
    disguised = torch.tensor([EMOTIONS.index(pairs[i % CLIPS][1]) for i in range(n)])
    return FrameData(clip_ids=[f"c{i:03d}" for i in range(n)], subjects=[f"s{i // CLIPS + 1:02d}" for i in range(n)],
                     images=torch.zeros(n, 3, 2, 2, dtype=torch.uint8), tasks=MFED_TASKS,
                     labels={"true": true, "disguised": disguised}, paradigm="apex", source={"estimate": 1})


def extraction_rate(name: str, n: int, batch: int, *, image_path: bool = False) -> float:
    """bf16 (precision auto) images/s of extract; ``image_path``: fp32 with augmentation, what the image path
    pays per image and epoch for a frozen backbone on the CPU (its autocast is CUDA-only)."""
    from unmask.config import AugmentConfig
    from unmask.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess, build_augment
    from unmask.models.backbones import create_backbone
    from unmask.train.features import extract, resolve_precision

    torch.manual_seed(0)
    bb = create_backbone(name).eval()
    size = bb.data_config["input_size"][-1]
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8)
    dtype = torch.float32 if image_path else resolve_precision("auto", torch.device("cpu"))
    pre = Preprocess(IMAGENET_MEAN, IMAGENET_STD, build_augment(AugmentConfig()) if image_path else None)
    views = 2 if image_path else 1  # view 1 is augmented; time it alone
    extract(bb, images[:min(4, n)], pre, batch_size=batch, dtype=dtype, progress=False)  # warm-up
    t0 = time.perf_counter()
    extract(bb, images, pre, batch_size=batch, dtype=dtype, progress=False, views=views)
    if image_path:
        t1 = time.perf_counter()
        extract(bb, images, pre, batch_size=batch, dtype=dtype, progress=False)
        return n / ((t1 - t0) - (time.perf_counter() - t1))
    return n / (time.perf_counter() - t0)


def head_seconds(model_name: str, backbone: str, epochs: int, views: int, tmp: Path, *, folds: int = SUBJECTS,
                 weights_file: str | None = None, around=contextlib.nullcontext) -> tuple[float, float]:
    """(seconds per fold-epoch, seconds per run outside the epoch loops) for the heads of ``folds`` LOSO folds
    trained from cached features as :func:`unmask.train.engine.fit_folds` trains them (one stack)."""
    from unmask.config import load_config
    from unmask.train.engine import build_model, fit_folds
    from unmask.train.protocols import make_folds

    data = paper_sized_data()
    chosen = make_folds(data.subjects)[:folds]
    over = [f"model.name={model_name}", f"model.backbone={backbone}", f"optim.epochs={epochs}",
            f"optim.patience={epochs}", "runtime.device=cpu", f"features.views={views}",
            f"model.weights={weights_file or 'null'}"]
    if model_name == "single_stream":
        over.append("model.args.single_stream.task='true'")
    cfg = load_config("dsid_paper", over)
    out = tmp / f"{model_name}-{backbone}-{folds}"
    torch.manual_seed(0)
    model = build_model(cfg, data.tasks)  # built (and its weights file loaded) once per run, outside the timing
    feats = torch.randn(views, len(data), model.backbone.num_features)
    t0 = time.perf_counter()
    with around():  # e.g. a profiler, around the training only
        fit_folds(cfg, chosen, data, [out / f.name for f in chosen], features=feats, model=model, progress=False)
    wall = time.perf_counter() - t0
    loop = sum(float(pd.read_csv(out / f.name / "log.csv")["seconds"].sum()) for f in chosen)  # shares of the stack
    return loop / (folds * epochs), wall - loop


def profile_stack(epochs: int) -> None:
    """Where the DSID stack's time goes: the batched matmuls' share and their GFLOP/s (torch.profiler's FLOP
    counts) next to this CPU's fp32 matmul rate, measured in the same run."""
    from torch.profiler import profile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from matmul_rate import matmul_rate

    prof = profile(with_flops=True)
    with tempfile.TemporaryDirectory(prefix="unmask-estimate-") as tmp:
        head_seconds("dsid", "clip_vit_b16", epochs, 4, Path(tmp), around=lambda: prof)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    mm = [e for e in events if e.key in ("aten::bmm", "aten::baddbmm")]
    mm_us, mm_flops = sum(e.self_cpu_time_total for e in mm), sum(e.flops for e in mm)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=32))
    print(f"DSID stack (22 folds, D=512, {epochs} epochs): bmm + baddbmm {100 * mm_us / total:.0f}% of the profiled "
          f"CPU time at {mm_flops / mm_us / 1e3:.1f} GFLOP/s; fp32 matmul rate of this CPU "
          f"{matmul_rate(torch.float32):.1f} GFLOP/s")


def fmt(s: float) -> str:
    return f"{s / 60:.1f} min" if s < 2 * HOUR else f"{s / HOUR:.2f} h"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs-measured", type=int, default=4)
    p.add_argument("--n", type=int, default=16, help="images per extraction-rate measurement")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--views", default="1,2,4,8")
    p.add_argument("--profile", action="store_true",
                   help="only profile the DSID stack: matmul share of the time and GFLOP/s vs this CPU's fp32 rate")
    a = p.parse_args(argv)
    if a.profile:
        profile_stack(a.epochs_measured)
        return
    views = [int(v) for v in a.views.split(",")]

    rates = {name: extraction_rate(name, a.n, a.batch) for name in EXTRACTIONS}
    image_rate = extraction_rate("vit_b16", a.n, a.batch, image_path=True)
    with tempfile.TemporaryDirectory(prefix="unmask-estimate-") as tmp:
        tmp = Path(tmp)
        ep, v = a.epochs_measured, max(views)
        # the runs' models: Table I's single-stream ViT-B/16 (D=768), Tables II-IV's DSID on CLIP (D=512)
        ss_epoch, ss_over = head_seconds("single_stream", "vit_b16", ep, v, tmp)
        ds_epoch, ds_over = head_seconds("dsid", "clip_vit_b16", ep, v, tmp)
        ds_alone, _ = head_seconds("dsid", "clip_vit_b16", ep, v, tmp, folds=1)  # one fold at a time
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a busy machine can make two threads slower than one
        ds1_epoch, _ = head_seconds("dsid", "clip_vit_b16", ep, v, tmp / "t1")
        torch.set_num_threads(threads)

    print(f"measured on {threads} threads, torch {torch.__version__}")
    for name, r in rates.items():
        print(f"extraction (bf16 auto) {name:13s}: {r:6.2f} img/s  (x{EXTRACTIONS[name]} distinct extraction(s))")
    print(f"heads from cache, 22 LOSO folds trained as one stack, 600 training / 30 validation items per fold: "
          f"single_stream D=768 {ss_epoch * 1000:.1f} ms, dsid D=512 {ds_epoch * 1000:.1f} ms per fold-epoch; "
          f"per run outside the epoch loops: {ss_over:.1f} s, {ds_over:.1f} s")
    print(f"dsid one fold at a time: {ds_alone * 1000:.1f} ms per fold-epoch -> the stack is "
          f"{ds_alone / ds_epoch:.1f}x faster; stack on 1 thread: {ds1_epoch * 1000:.1f} ms "
          f"({ds1_epoch / ds_epoch:.2f}x the time on {threads} threads)")
    per_epoch_images = (SUBJECTS - 2) * CLIPS + CLIPS  # training + validation subjects
    img_epoch = per_epoch_images / image_rate + ss_epoch
    print(f"image path, vit_b16 frozen, fp32 + augmentation: {image_rate:.2f} img/s -> one epoch of a paper fold "
          f"({per_epoch_images} images) ~ {img_epoch:.0f} s; head training from cache vs image path per fold "
          f"(derived from these two measurements): {img_epoch / ss_epoch:.0f}x")
    folds = SUBJECTS
    heads = {name: RUNS[name] * (folds * EPOCHS_MAX * ep + ov)
             for name, ep, ov in (("single_stream", ss_epoch, ss_over), ("dsid", ds_epoch, ds_over))}
    head_total = sum(heads.values())
    print(f"heads: {sum(RUNS.values())} runs x {folds} folds x {EPOCHS_MAX} epochs = "
          f"{sum(RUNS.values()) * folds * EPOCHS_MAX} fold-epochs: {fmt(head_total)} "
          f"(single_stream {fmt(heads['single_stream'])}, dsid {fmt(heads['dsid'])}; upper bound: early stopping "
          f"with patience 50 can stop a fold from epoch 51)")
    min_epochs = sum(RUNS[n] * (folds * 51 * ep + ov) for n, ep, ov in
                     (("single_stream", ss_epoch, ss_over), ("dsid", ds_epoch, ds_over)))
    best = None
    for v in views:
        ext = sum(SUBJECTS * CLIPS * v * k / rates[name] for name, k in EXTRACTIONS.items())
        total = ext + head_total
        fits = total <= HOUR
        best = v if fits else best
        print(f"views={v}: extraction {fmt(ext)} + heads {fmt(head_total)} = {fmt(total)} "
              f"({'fits' if fits else 'does not fit'} in 1 hour; with every fold stopping at epoch 51: "
              f"{fmt(ext + min_epochs)})")
    if best is None:
        print("no views setting fits in 1 hour on this machine at 200 epochs; extraction alone per view: "
              f"{fmt(sum(SUBJECTS * CLIPS * k / rates[n] for n, k in EXTRACTIONS.items()))}")
    else:
        print(f"largest views that fits in 1 hour: {best}")


if __name__ == "__main__":
    main()
