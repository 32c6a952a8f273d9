"""The paper-protocol estimate's counted work and its stack timing (bench/paper_protocol_estimate.py), and the
matmul bench's bf16 probe: the figures docs/speed.md quotes come from these functions."""

import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import matmul_rate  # noqa: E402
import paper_protocol_estimate as est  # noqa: E402
from unmask.models.inference import cpu_supports_bf16  # noqa: E402


def test_the_matmul_bench_measures_bf16_as_fast_only_where_the_cpu_has_it():
    assert matmul_rate.bf16_native("cpu") == cpu_supports_bf16()
    assert matmul_rate.bf16_native("cuda:0")
    assert matmul_rate.matmul_rate(torch.float32, n=64, repeats=1, inner=1) > 0


def test_a_fold_epoch_of_dsid_costs_what_its_steps_and_validation_cost(tmp_path):
    # 600 training items in batches of 32 (18 full steps and one of 24) plus 30 validation items, counted by
    # FlopCounterMode; what happens once per run (test predictions, trust statistics) must cancel out
    # the tiny CLIP stand-in keeps the test light (the paper's heads, narrower features)
    from unmask.models.backbones import create_backbone

    got = est.head_gflop_per_fold_epoch("dsid", "tiny_clip_vit", tmp_path)
    d = create_backbone("tiny_clip_vit").num_features
    a, b, c = 512, 256, 6  # adapter, branch width, classes (configs/dsid_paper.yaml)
    per_row = 2 * (d * a + 2 * a * b + 2 * b * c)  # forward multiply-adds x 2
    train_rows, val_rows = 600, 30
    matmuls = train_rows * per_row * 3 - train_rows * 2 * d * a  # backward: no input gradient for the features
    lower = (matmuls + val_rows * per_row) / 1e9  # the HSIC kernel matrices come on top
    assert lower <= got <= 1.1 * lower


def test_the_stack_timing_reports_every_size():
    ms = est.stack_member_step_ms("single_stream", "tiny_vit", [1, 3], steps=1)
    assert set(ms) == {1, 3} and all(v > 0 for v in ms.values())


@pytest.mark.parametrize("seconds,text", [(59, "1.0 min"), (7201, "2.00 h")])
def test_times_are_printed_in_minutes_then_hours(seconds, text):
    assert est.fmt(seconds) == text
