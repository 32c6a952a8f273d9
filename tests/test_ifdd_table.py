"""`unmask reproduce ifdd` full mode: the XS video-backbone rows join the table when their weights are given."""

from __future__ import annotations

from pathlib import Path

from unmask.experiments.ifdd_table import REFERENCE, ROWS, XS_ROWS, row_configs, rows


def test_full_mode_adds_the_video_backbone_rows_only_with_their_weights(tmp_path):
    prepared = tmp_path / "dfew_prepared"
    plain = row_configs(prepared, quick=False, weights="clip.pt")
    assert list(plain) == [name for _, name, _ in ROWS] and REFERENCE in plain
    assert all(c.model.backbone == "clip_vit_b16" and c.model.weights == "clip.pt" for c in plain.values())
    full = row_configs(prepared, quick=False, weights="clip.pt", xs_weights="mvit_v2_s.pth",
                       overrides=["optim.epochs=3"])
    assert list(full) == [name for _, name, _ in ROWS + XS_ROWS]
    xs, linear = full["ifdd_xs"], full["xs_linear"]
    for c in (xs, linear):
        assert c.model.backbone == "mvit_xs" and c.model.mode == "finetune" and c.model.weights == "mvit_v2_s.pth"
        assert c.data.window == 16 and c.data.test_windows == "all" and Path(c.data.prepared) == prepared
        assert c.optim.epochs == 3  # the user's overrides reach every row
    assert xs.model.name == "ifdd" and linear.model.name == "frame_average"
    assert full["ifdd"].model.backbone == "clip_vit_b16"
    # quick mode never has them (no video backbone on the synthetic CPU table)
    assert [n for _, n, _ in rows(True, "mvit_v2_s.pth")] == [n for _, n, _ in ROWS]
