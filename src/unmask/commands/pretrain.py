"""``unmask pretrain PREPARED --out FILE``: AU-intensity pretraining of a backbone (see unmask.train.pretrain)."""

from __future__ import annotations

import argparse

HELP = "pretrain a backbone on the AU intensities of a prepared set; writes a weights file for model.weights"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prepared", help="folder written by `unmask prepare` (its manifest needs AU annotations)")
    p.add_argument("--out", required=True, help="weights file (.safetensors for timm backbones, .pt for CLIP)")
    p.add_argument("--backbone", default="tiny_resnet")
    p.add_argument("--img-size", type=int, default=64, help="input size of tiny backbones (0: the backbone's)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads while training (fixed: the weights depend on it; 0: torch's default)")


def run(args: argparse.Namespace) -> int:
    import logging

    from unmask.train.pretrain import pretrain_au

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = pretrain_au(args.prepared, args.out, backbone=args.backbone, img_size=args.img_size or None,
                      epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                      threads=args.threads or None)
    print(f"weights: {out} (use model.backbone={args.backbone} model.weights={out})")
    return 0
