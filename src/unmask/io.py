"""Atomic writes: a reader (or a rerun after a kill) sees a whole file or none, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def atomic_replace(tmp: Path, path: Path) -> Path:
    os.replace(tmp, path)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    return atomic_replace(tmp, path)


def atomic_write_json(path: str | Path, data: Any, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    import torch

    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    return atomic_replace(tmp, path)


def claim_output(out: str | Path, settings: dict, record: str, subdirs: tuple[str, ...] = ()) -> Path:
    """Make ``out`` the home of a generated set made with ``settings``, resumably.

    An empty or missing folder is taken; a folder whose ``record`` file holds the same settings (a rerun of
    an interrupted job) is taken again; anything else is refused with the reason, so two configurations are
    never mixed in one folder. Creates ``subdirs`` and writes the record; returns ``out`` as a Path."""
    from unmask.errors import UnmaskError

    out = Path(out)
    wanted = json.loads(json.dumps(settings))  # tuples -> lists: compare as it will read back
    if out.exists() and not out.is_dir():
        raise UnmaskError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        try:
            existing = json.loads((out / record).read_text())
        except (OSError, ValueError):
            existing = None
        if existing != wanted:
            what = "was made with other options" if existing else "is not empty"
            raise UnmaskError(f"output folder {out} {what}; pick another folder (or rerun with the same options "
                              "to resume)")
    out.mkdir(parents=True, exist_ok=True)
    for sub in subdirs:
        (out / sub).mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / record, wanted)
    return out
