"""MEDN speed on this machine: onset-to-apex flow per method (clips/s) and training steps/s per variant, and the
MEGC2019 composite protocol's wall time estimated from them.

    python bench/medn_speed.py [--size 112] [--clips 40] [--steps 10] [--threads 1] [--device auto|cpu|cuda]

Flow: ECC alignment + flow on pairs of synthetic 112 px face crops (`unmask synth --kind micro` renders), per
method (tvl1 from OpenCV's contrib build), always on the CPU. On a GPU (``--device cuda``, or ``auto`` where one
is present) the training steps run there under bf16 autocast, as ``unmask train`` does, and the estimate is for
that GPU. Training: forward + backward + AdamW step of a batch of 16
clips of 8 frames + flow at 64 px (configs/medn_synth.yaml sizes) for MEDN and the motion-branch baseline.
Estimate: 442 clips, 68 LOSO folds, `--epochs` epochs over ~435 training clips per fold.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def flow_rates(size: int, clips: int) -> dict[str, float]:
    import cv2

    from unmask.data.flow import METHODS, onset_apex_flow
    from unmask.synth.face import lighting_map, render_background, render_face
    from unmask.synth.micro import MicroConfig, _identity, plan_micro

    cfg = MicroConfig()
    pairs = []
    for k in range(clips):  # onset and apex renders of real micro clips, cropped around the face
        ident = _identity(cfg, k % cfg.subjects)
        plan = plan_micro(cfg, k % cfg.subjects, k, ("happiness", "surprise", "disgust")[k % 3], ident.expressivity)
        bg, light = render_background(ident, cfg.width, cfg.height), lighting_map(ident, cfg.width, cfg.height)
        crops = []
        for i in (plan.onset, plan.apex):
            img = bg.copy()
            render_face(img, ident, plan.frames[i], plan.poses[i])
            img = np.clip(img * light, 0, 255).astype(np.uint8)
            x0, y0 = int(ident.cx - ident.hw * 1.2), int(ident.cy - ident.hh * 1.2)
            side = int(2.4 * ident.hh)
            crop = img[max(0, y0):y0 + side, max(0, x0):x0 + side]
            crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
        pairs.append(crops)
    rates = {}
    for method in METHODS:
        if method == "tvl1" and not hasattr(cv2, "optflow"):
            print("tvl1: not available (this OpenCV lacks the contrib modules; unmask depends on opencv-contrib-python-headless<5)")
            continue
        onset_apex_flow(*pairs[0], method)  # warm-up
        t = time.perf_counter()
        for a, b in pairs:
            onset_apex_flow(a, b, method, "ecc")
        rates[method] = len(pairs) / (time.perf_counter() - t)
        print(f"flow {method}: {rates[method]:.1f} clips/s ({size} px, ECC alignment included)")
    return rates


def step_rates(steps: int, dev: torch.device = torch.device("cpu")) -> dict[str, float]:
    from unmask.losses import create_loss
    from unmask.models import create_model
    from unmask.synth.micro import micro_tasks

    rates = {}
    for name, kw in (("medn", {"frame_input": "delta"}), ("motion_only", {"branches": "motion"})):
        torch.manual_seed(0)
        model = create_model("medn", tasks=micro_tasks(), backbone="tiny_vit", img_size=64, **kw).to(dev)
        obj = create_loss("medn", tasks=model.tasks, au_weight=0.5, orth_weight=0.1)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        x = torch.randn(16, 9, 3, 64, 64, device=dev)
        y = {"emotion": torch.randint(0, 4, (16,)), "aus": torch.randint(0, 2, (16, 8)).float()}
        y = {k: v.to(dev) for k, v in y.items() if k in [t.name for t in model.tasks]}
        for i in range(steps + 2):
            if i == 2:
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t = time.perf_counter()
            opt.zero_grad()
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                out = model(x)
            obj({k: v.float() for k, v in out.items()}, y)["loss"].backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        rates[name] = steps / (time.perf_counter() - t)
        print(f"train {name}: {rates[name]:.2f} steps/s (batch 16, 8 frames + flow, 64 px)")
    return rates


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=112)
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = p.parse_args(argv)
    dev = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                       else "cpu")
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "this CPU"
    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    flows = flow_rates(args.size, args.clips)
    steps = step_rates(args.steps, dev)
    folds, train_clips = 68, 435
    per_fold = args.epochs * (-(-train_clips // 16))
    for name, r in steps.items():
        print(f"estimate, MEGC2019 composite LOSO ({folds} folds x {args.epochs} epochs), {name}: "
              f"{folds * per_fold / r / 3600:.1f} h training on {where}")
    best = max(flows.values())
    print(f"estimate, flow of the 442 composite clips: {442 / best:.0f} s with the fastest method")


if __name__ == "__main__":
    main()
