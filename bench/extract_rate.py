"""Feature-extraction rate of :func:`unmask.train.features.extract` against this machine's matmul rate.

For a randomly initialised backbone (same cost as pretrained weights) it prints GFLOP per image (counted with
``torch.utils.flop_counter.FlopCounterMode`` on one image), images/s and achieved GFLOP/s per precision, the
ratio achieved / possible (the fp32 or bf16 matmul rate measured in the same run, before and after, best of
both), and the error of bf16 features against fp32 features.

    python bench/extract_rate.py [--backbone clip_vit_b16] [--batch 32] [--n 64] [--quick] [--profile]
                                 [--batches 16,32,64] [--quick-gelu]

Configurations: ``fp32``; ``bf16-autocast`` (autocast over the fp32 weights, what extract did before);
``bf16`` (what extract does: a bf16 copy of the backbone under autocast); for conv nets also the same without
channels-last memory. All timings of one run share the machine's load; compare ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from matmul_rate import bf16_native, matmul_rate  # noqa: E402
from unmask.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess  # noqa: E402
from unmask.models.backbones import create_backbone  # noqa: E402
from unmask.models.inference import cpu_supports_bf16  # noqa: E402
from unmask.train import features as feats  # noqa: E402


def gflop_per_image(backbone, size: int) -> float:
    """Forward FLOP of one image. Grad mode with an input that requires grad keeps nn.MultiheadAttention off
    its fused inference path, whose in-projection and attention FlopCounterMode would not see."""
    x = torch.randn(1, 3, size, size, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        backbone(x)
    return counter.get_total_flops() / 1e9


@contextlib.contextmanager
def channels_last_off():
    saved = feats.uses_convolutions
    feats.uses_convolutions = lambda m: False
    try:
        yield
    finally:
        feats.uses_convolutions = saved


def time_extract(backbone, images, *, dtype, batch, cast_weights=True, repeats=2, no_cl=False) -> tuple[float, torch.Tensor]:
    """Best images/s over ``repeats`` full passes (after a one-batch warm-up) and the features."""
    pre = Preprocess(IMAGENET_MEAN, IMAGENET_STD)
    ctx = channels_last_off if no_cl else contextlib.nullcontext
    with ctx():
        feats.extract(backbone, images[:min(batch, 8)], pre, batch_size=batch, dtype=dtype, cast_weights=cast_weights,
                      progress=False)
        best, out = float("inf"), None
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = feats.extract(backbone, images, pre, batch_size=batch, dtype=dtype, cast_weights=cast_weights,
                                progress=False)
            best = min(best, time.perf_counter() - t0)
    return len(images) / best, out[0]


def profile_table(backbone, images, dtype, cast_weights: bool, rows: int = 8) -> str:
    from torch.profiler import ProfilerActivity, profile

    pre = Preprocess(IMAGENET_MEAN, IMAGENET_STD)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        feats.extract(backbone, images, pre, batch_size=len(images), dtype=dtype, cast_weights=cast_weights,
                      progress=False)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=48)


def attention_path(backbone, dtype, cast_weights) -> str:
    """Which attention kernels one forward uses (fused SDPA / fused MHA / plain bmm+softmax)."""
    from torch.profiler import ProfilerActivity, profile

    pre = Preprocess(IMAGENET_MEAN, IMAGENET_STD)
    size = backbone.data_config["input_size"][-1]
    img = torch.randint(0, 255, (2, 3, size, size), dtype=torch.uint8)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        feats.extract(backbone, img, pre, batch_size=2, dtype=dtype, cast_weights=cast_weights, progress=False)
    names = {e.key for e in prof.key_averages()}
    found = sorted(n for n in names if "scaled_dot_product" in n or "multi_head_attention" in n)
    return ", ".join(found) or "none (no fused attention kernel)"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="clip_vit_b16")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--n", type=int, default=64, help="images per timed pass")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="16 images, one pass")
    p.add_argument("--batches", default="", help="also time bf16 at these batch sizes, e.g. 16,32,64")
    p.add_argument("--profile", action="store_true", help="print the top operators of one fp32 and one bf16 batch")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quick-gelu", action="store_true",
                   help="CLIP with QuickGELU, as with OpenAI weights (random init otherwise builds nn.GELU)")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.repeats = min(a.n, 16), 1
        a.batch = min(a.batch, a.n)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    backbone = create_backbone(a.backbone, **({"quick_gelu": True} if a.quick_gelu else {})).eval()
    size = backbone.data_config["input_size"][-1]
    images = torch.randint(0, 256, (a.n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    gflop = gflop_per_image(backbone, size)
    conv = feats.uses_convolutions(backbone)
    print(f"backbone {a.backbone}{' (QuickGELU)' if a.quick_gelu else ''} (random init), input {size}x{size}, {gflop:.2f} GFLOP/img, {a.n} images, "
          f"batch {a.batch}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"cpu bf16 {cpu_supports_bf16()}, mkldnn {torch.backends.mkldnn.is_available()}")

    native = bf16_native()
    if not native:
        print(f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no bf16 instructions (AVX512-BF16 / AMX): "
              f"torch emulates bf16 hundreds of times slower than fp32, so features.precision=auto extracts in "
              f"fp32 here; the bf16 configurations are skipped and fp32 is compared with the fp32 matmul rate")
    precisions = ("fp32", "bf16") if native else ("fp32",)

    def rates() -> dict:
        return {k: matmul_rate(getattr(torch, {"fp32": "float32", "bf16": "bfloat16"}[k])) for k in precisions}

    peak = rates()
    configs = [("fp32", torch.float32, True, False)]
    if native:
        configs += [("bf16-autocast", torch.bfloat16, False, False), ("bf16", torch.bfloat16, True, False)]
    if conv:
        configs += [("fp32 no-channels-last", torch.float32, True, True)]
        if native:
            configs += [("bf16 no-channels-last", torch.bfloat16, True, True)]
    results = {}
    for name, dtype, cast, no_cl in configs:
        results[name] = time_extract(backbone, images, dtype=dtype, batch=a.batch, cast_weights=cast,
                                     repeats=a.repeats, no_cl=no_cl)
    for k, v in rates().items():
        peak[k] = max(peak[k], v)  # load from other processes only lowers a rate: keep the best
    print("matmul rate (same run, best of before/after): "
          + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items()))
    for name, (rate, _) in results.items():
        prec = "bf16" if name.startswith("bf16") else "fp32"
        achieved = rate * gflop
        print(f"{name:24s} {rate:7.2f} img/s  {achieved:7.1f} GFLOP/s  achieved/possible({prec} matmul) "
              f"{achieved / peak[prec]:.2f}")
    f32 = results["fp32"][1]
    for name in ("bf16-autocast", "bf16") if native else ():
        b = results[name][1]
        diff = (b - f32).abs()
        cos = F.cosine_similarity(b, f32, dim=-1)
        print(f"{name} vs fp32 features: max abs diff {diff.max():.4g}, max |fp32| {f32.abs().max():.4g}, "
              f"relative L2 {((b - f32).norm() / f32.norm()):.4g}, cosine min {cos.min():.5f} mean {cos.mean():.5f}")
    if native:
        print(f"bf16/fp32 extraction speed: {results['bf16'][0] / results['fp32'][0]:.2f}; "
              f"bf16 (weights cast once)/bf16-autocast: {results['bf16'][0] / results['bf16-autocast'][0]:.2f}")
    if conv:
        print("channels-last gain: " + ", ".join(f"{k} {results[k][0] / results[k + ' no-channels-last'][0]:.2f}"
                                                 for k in precisions))
    attention = [("fp32", torch.float32, True)]
    if native:
        attention += [("bf16-autocast", torch.bfloat16, False), ("bf16", torch.bfloat16, True)]
    for name, dtype, cast in attention if not conv else ():
        print(f"attention kernels, {name}: {attention_path(backbone, dtype, cast)}")
    best = "bf16" if native else "fp32"
    best_dtype = torch.bfloat16 if native else torch.float32
    if a.batches:
        for b in (int(x) for x in a.batches.split(",")):
            rate, _ = time_extract(backbone, images, dtype=best_dtype, batch=b, repeats=a.repeats)
            print(f"{best} batch {b:4d}: {rate:7.2f} img/s  achieved/possible {rate * gflop / peak[best]:.2f}")
    if a.profile:
        for name, dtype, cast in configs[:1] + ([c[:3] for c in configs if c[0] == "bf16"] if native else []):
            print(f"profile, {name}, one batch of {a.batch}:")
            print(profile_table(backbone, images[:a.batch], dtype, cast))
    ratio = results[best][0] * gflop / peak[best]
    print(f"extraction in {best} (what features.precision=auto uses here): {ratio:.2f} of the {best} matmul rate"
          + ("" if native else "; the bf16 share cannot be measured on this CPU"))


if __name__ == "__main__":
    main()
