"""Unreadable checkpoint and weight files: one message that says what is wrong with the file, not torch's."""

from __future__ import annotations

import pytest
import torch

from unmask.checkpoint import load_checkpoint
from unmask.errors import UnmaskError
from unmask.models.weights import read_checkpoint


class Opaque:
    pass


@pytest.mark.parametrize("load,what", [(load_checkpoint, "unmask checkpoint"), (read_checkpoint, "weights file")])
def test_a_pickle_torch_refuses_is_not_a_safe_file(tmp_path, load, what):
    path = tmp_path / "crafted.pt"
    torch.save({"format": "unmask.checkpoint", "state_dict": {"w": torch.zeros(1)}, "obj": Opaque()}, path)
    with pytest.raises(UnmaskError) as e:
        load(path)
    message = str(e.value)
    assert f"is not a safe {what}" in message and str(path) in message
    assert "weights_only" not in message and "\n" not in message  # not torch's advice to switch the check off


@pytest.mark.parametrize("load", [load_checkpoint, read_checkpoint])
def test_a_truncated_file_says_truncated_or_corrupt(tmp_path, load):
    whole = tmp_path / "whole.pt"
    torch.save({"a": torch.arange(20000.0), "b": torch.ones(3000)}, whole)
    data = whole.read_bytes()
    # cut points that make torch fail in different ways: EOFError, a missing zip directory, Errno 22 on a seek
    for cut in (0, 97, len(data) // 2, 4171, len(data) - 10):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        with pytest.raises(UnmaskError) as e:
            load(path)
        assert "truncated or corrupt" in str(e.value) and "Errno" not in str(e.value), (cut, str(e.value))
