"""optim.mix_on=pixels: mixup / cutmix on the images before the backbone (the image path), as the releases do."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd
import pytest
import torch

from unmask.cli import main
from unmask.train.mixing import MixPlan

RUN = ["model.name=temporal_transformer", "model.backbone=tiny_resnet", "model.weights=null", "model.mode=finetune",
       "model.backbone_args.img_size=32", "model.args.temporal_transformer.frames=4",
       "model.args.temporal_transformer.dim=16", "model.args.temporal_transformer.depth=1",
       "model.args.temporal_transformer.heads=2", "data.paradigm=clip", "data.masked_only=true",
       "optim.epochs=2", "optim.warmup_epochs=0", "optim.batch_size=16", "features.views=1",
       "features.precision=fp32", "augment.hflip=false", "augment.rotation=0", "augment.color_jitter=0",
       "runtime.threads=1", "--folds", "s01", "--quiet"]


def test_a_box_is_pasted_into_every_frame_and_lambda_is_the_area_kept():
    x = torch.randn(3, 2, 3, 8, 10)  # [B, T, 3, H, W]
    perm = torch.tensor([2, 0, 1])
    plan = MixPlan([(("box", (0.25, 0.5, 0.5)), perm)])  # a quarter of the area, centred
    out = plan.mix_pixels(x)
    # box: h 4 x w 5 around (4, 5): rows 2..5, columns 3..7
    inside = torch.zeros(8, 10, dtype=torch.bool)
    inside[2:6, 3:8] = True
    assert torch.equal(out[..., inside], x[perm][..., inside])
    assert torch.equal(out[..., ~inside], x[..., ~inside])
    assert plan.lam.tolist() == [pytest.approx(1 - 20 / 80)]
    # at the border the box is clipped, and lambda follows the area actually pasted
    edge = MixPlan([(("box", (0.25, 0.0, 0.0)), perm)])
    out = edge.mix_pixels(x)
    assert torch.equal(out[..., :2, :3], x[perm][..., :2, :3]) and torch.equal(out[..., 2:, :], x[..., 2:, :])
    assert edge.lam.tolist() == [pytest.approx(1 - 6 / 80)]


def test_pixel_mixup_mixes_whole_images():
    x = torch.randn(4, 3, 6, 6)
    perm = torch.tensor([1, 0, 3, 2])
    plan = MixPlan([(("mixup", 0.3), perm)])
    assert torch.allclose(plan.mix_pixels(x), 0.3 * x + 0.7 * x[perm])
    assert plan.lam.tolist() == [pytest.approx(0.3)]


def test_pixel_cutmix_trains_through_the_cli_and_is_refused_on_cached_features(tiny_synth, tmp_path, capsys):
    base = ["train", "--config", "ifdd_synth", f"data.prepared={tiny_synth[1]}", *RUN]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert main([*base, "optim.cutmix=1.0", "optim.mix_on=pixels", "--out", str(tmp_path / "cut")]) == 0
    plain = pd.read_csv(tmp_path / "plain" / "folds" / "s01" / "log.csv")
    cut = pd.read_csv(tmp_path / "cut" / "folds" / "s01" / "log.csv")
    assert len(cut) == 2 and cut["loss"].notna().all()
    assert not (plain["loss"].round(6) == cut["loss"].round(6)).all()  # the boxes changed what was trained on
    capsys.readouterr()
    frozen = [a for a in base if a != "model.mode=finetune"] + ["model.mode=frozen", "optim.mixup=0.8",
                                                                 "optim.mix_on=pixels", "--out", str(tmp_path / "f")]
    assert main(frozen) == 2
    err = capsys.readouterr().err
    assert "optim.mix_on=pixels mixes the images before the backbone" in err and "Traceback" not in err
