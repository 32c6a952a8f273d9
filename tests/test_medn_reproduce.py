"""`unmask reproduce medn --quick`: the apex-frame RGB ViT baseline is a variant in the table, trained on the apex
crops (paradigm apex, the multitask model), compared with the motion-only baseline on the ambiguous pair."""

from __future__ import annotations

import json

import yaml

from unmask.experiments.medn import QUICK_VARIANTS, VARIANTS, reproduce_medn


def test_apex_vit_baseline_is_a_variant_of_the_quick_table(tmp_path):
    assert "apex_vit" in QUICK_VARIANTS and "model.name=multitask" in VARIANTS["apex_vit"]
    tiny = ["optim.epochs=1", "model.backbone_args.img_size=32", "model.args.medn.motion_dim=8",
            "model.args.medn.emotion_dim=8", "model.args.medn.fusion_dim=8", "model.args.multitask.adapter_dim=8"]
    path = reproduce_medn(tmp_path, quick=True, variants=["apex_vit"], overrides=tiny, subjects=3, clips=4)
    rows = {r["variant"]: r for r in json.loads((tmp_path / "medn_table.json").read_text())}
    assert list(rows) == ["motion_only", "apex_vit"]  # the baseline of the comparison is added first
    apex = rows["apex_vit"]
    assert apex["n_amb"] == 6 and 0 <= apex["amb_acc"] <= 1 and apex["au_f1"] is not None
    assert {"diff", "mcnemar_p"} <= set(apex["vs_baseline"]) and "corr2" not in apex  # no motion-emotion pair
    cfg = yaml.safe_load((tmp_path / "runs" / "apex_vit" / "config.yaml").read_text())
    assert cfg["data"]["paradigm"] == "apex" and cfg["model"]["name"] == "multitask"
    assert "| apex_vit |" in path.read_text() and not (tmp_path / "decoupling.png").exists()
