"""IFDD speed on this machine, measured in one run (ratios are what to read; absolute rates depend on the load).

    python bench/ifdd_speed.py [--threads 2] [--iters 3] [--device auto|cpu|cuda] [--batch 8]

On a GPU (``--device cuda``, or ``auto`` where one is present) every step runs under bf16 autocast, as
``unmask train`` runs there, the path-(a) steps take ``--batch`` clips, and the estimates are for that GPU.

1. training the IFDD modules (full size: 16 frames, CLIP ViT-B/16 tokens pooled to 7x7, C=768) from cached tokens:
   clips/s of forward + backward + AdamW step, batch 8;
2. the same through the frozen CLIP ViT-B/16 (random weights: the speed does not depend on them), 16 frames per
   clip, batch 1: clips/s, and the share of the time the backbone takes;
3. the MViTv2-S XS video backbone + IFDD head (path (a)) built as the engine trains it
   (``create_model("ifdd", backbone="mvit_xs", mode="finetune")``, whole clips through the backbone): FLOPs per
   16x224x224 clip counted with torch.utils.flop_counter (forward), and clips/s of a training step at batch 1 on this
   CPU, beside the plain XS backbone with a linear head (``frame_average`` over it);
4. the estimated wall time of the full DFEW protocol (5 folds x 100 epochs, ~11.7k single-labelled clips, 4/5 of
   them training each fold, validation ignored) on this CPU for path (b) with a cache (extraction once + head
   training) and without one (the backbone every epoch), from the rates above.
"""

from __future__ import annotations

import argparse
import time

import torch

from unmask.models import create_model
from unmask.tasks import Task

EMO = (Task("emotion", "single", ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")),)
DFEW_CLIPS, FOLDS, EPOCHS = 11_697, 5, 100


def rate(step, n_clips: int, iters: int, device: torch.device = torch.device("cpu")) -> float:
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n_clips * iters / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--batch", type=int, default=0, help="clips per path-(a) step (default: 1 on a CPU, 8 on a GPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                       else "cpu")
    gpu = dev.type == "cuda"
    where = torch.cuda.get_device_name(dev) if gpu else "this CPU"
    batch = args.batch or (8 if gpu else 1)

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=gpu)  # as unmask train runs on CUDA

    model = create_model("ifdd", tasks=EMO, backbone="clip_vit_b16", weights=None, frames=16, grid=7, heads=8).to(dev)
    head_params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(head_params, lr=1e-4)
    y8 = torch.randint(0, 7, (8,), device=dev)
    tokens = torch.randn(8, 16, 197, 768, device=dev)

    def head_step(x=tokens, y=y8):
        opt.zero_grad()
        with autocast():
            out = model.forward_head(x)
            loss = torch.nn.functional.cross_entropy(out["emotion_logits"].float(), y)
        loss.backward()
        opt.step()

    model.train()
    cached = rate(head_step, 8, args.iters, dev)
    clip = torch.randn(batch, 16, 3, 224, 224, device=dev)

    def full_step():
        with torch.no_grad(), autocast():
            t = model.backbone.forward_features(clip.flatten(0, 1)).view(batch, 16, 197, 768)
        head_step(t.float(), y8[:batch])

    through = rate(full_step, batch, max(1, args.iters // 2), dev)
    print(f"IFDD modules: {sum(p.numel() for p in head_params) / 1e6:.1f} M trainable parameters")
    print(f"(b) cached tokens: {cached:.2f} clips/s; through frozen CLIP ViT-B/16: {through:.3f} clips/s "
          f"(cache {cached / through:.0f}x faster)")

    from torch.utils.flop_counter import FlopCounterMode

    # path (a) as the engine trains it (model.backbone=mvit_xs, model.mode=finetune): whole clips through the video
    # backbone (encodes_clips), IFDD over its tokens; and the plain video backbone with a linear head
    xs_model = create_model("ifdd", tasks=EMO, backbone="mvit_xs", weights=None, mode="finetune", frames=8, grid=7,
                            heads=8).to(dev)
    plain = create_model("frame_average", tasks=EMO, backbone="mvit_xs", weights=None, mode="finetune").to(dev)
    video = torch.randn(batch, 16, 3, 224, 224, device=dev)  # [B, T, 3, H, W], as the engine passes a clip

    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            xs_model.eval()(video[:1])
    gflops = counter.get_total_flops() / 1e9
    params = sum(p.numel() for p in xs_model.parameters()) / 1e6

    def train_rate(m) -> float:
        opt2 = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=5e-5)

        def step():
            opt2.zero_grad()
            with autocast():
                loss = torch.nn.functional.cross_entropy(m(video)["emotion_logits"].float(), y8[:batch])
            loss.backward()
            opt2.step()

        m.train()
        return rate(step, batch, max(1, args.iters // 2), dev)

    xs_rate = train_rate(xs_model)
    plain_rate = train_rate(plain)
    print(f"(a) MViTv2-S XS + IFDD: {params:.1f} M parameters, {gflops:.1f} GFLOPs per 16x224x224 clip (forward, "
          f"counted; {gflops / 2:.1f} GMACs); training end to end {xs_rate:.3f} clips/s on {where} (batch {batch}); the "
          f"plain XS + linear head {plain_rate:.3f} clips/s")

    train_clips = DFEW_CLIPS * (FOLDS - 1) / FOLDS
    extract_s = DFEW_CLIPS / max(through, 1e-9)  # one pass of the backbone per clip (one view)
    head_s = FOLDS * EPOCHS * train_clips / cached
    print(f"full DFEW protocol on {where}, path (b) with a cache: ~{(extract_s + head_s) / 3600:.0f} h "
          f"(extraction {extract_s / 3600:.0f} h + heads {head_s / 3600:.1f} h); without a cache: "
          f"~{FOLDS * EPOCHS * train_clips / through / 86400:.0f} days; path (a): "
          f"~{FOLDS * EPOCHS * train_clips / xs_rate / 86400:.1f} days" + ("" if gpu else
          " (run this on a GPU for its estimate: --device cuda)"))


if __name__ == "__main__":
    main()
