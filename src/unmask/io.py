"""Atomic writes: a reader (or a rerun after a kill) sees a whole file or none, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path


def atomic_replace(tmp: Path, path: Path) -> Path:
    os.replace(tmp, path)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    return atomic_replace(tmp, path)


def atomic_write_json(path: str | Path, data, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def atomic_torch_save(obj, path: str | Path) -> Path:
    import torch

    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    return atomic_replace(tmp, path)
