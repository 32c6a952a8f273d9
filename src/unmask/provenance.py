"""What a model was trained on, written into every checkpoint by training and said by every front end.

A checkpoint's ``provenance`` record::

    known        False for a checkpoint from before this record existed (everything else then absent)
    origin       "synthetic" (a generator's set) | "source" (a dataset through a source adapter) | "unknown"
    generator    {"record", "kind", "renderer", "settings"} of ``unmask synth`` (the record file next to the
                 manifest: synth.json, photo.json), or None
    source       the source adapter's name (``unmask import NAME`` leaves ``<manifest>.source.json``), or None
    real_faces   True (real people), False (drawn or warped faces), None (unknown)
    faces        "cartoon" | "photo-warped" | "real" | "unknown": what the faces look like
    manifest     the prepared manifest's path as recorded and its fingerprint: the sha256 (first 16 hex digits)
                 of its rows with every absolute path written relative to the manifest's folder, so the same
                 data prepared in another checkout or on another machine has the same fingerprint
    subjects, clips              the whole prepared set the run used
    train_subjects, train_clips  the fold's training part

Where the data came from is read from the files the data tools leave, never from a model's name. The record
files of the generators and adapters are found next to the manifest ``prepare`` read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path

UNKNOWN: dict = {"known": False}

#: generator record file -> (renderer, what the faces look like, the generator's kind when its record names none)
GENERATOR_RECORDS: dict[str, tuple[str, str, str]] = {
    "synth.json": ("cartoon", "cartoon", "masked"),
    "photo.json": ("photo", "photo-warped", "photo"),
}
SOURCE_RECORD_SUFFIX = ".source.json"  # unmask import NAME --out m.csv -> m.csv.source.json


def source_record_path(manifest: str | Path) -> Path:
    manifest = Path(manifest)
    return manifest.with_name(manifest.name + SOURCE_RECORD_SUFFIX)


def write_source_record(manifest: str | Path, source: str) -> Path:
    """What ``unmask import SOURCE`` leaves beside the manifest it wrote: the adapter's name (real faces)."""
    from unmask.io import atomic_write_json

    path = source_record_path(manifest)
    atomic_write_json(path, {"source": source, "real_faces": True})
    return path


def _generator_kind(record: str, settings: dict) -> str:
    """The generator's kind: as its record says, else the masked and micro records (both ``synth.json``, from
    before the generators named their kind) told apart by a knob only the micro generator has."""
    if settings.get("kind"):
        return str(settings["kind"])
    if record == "synth.json" and "ambiguous" in settings:
        return "micro"
    return GENERATOR_RECORDS[record][2]


def manifest_fingerprint(path: str | Path) -> str | None:
    """The first 16 hex digits of the sha256 of a manifest's rows with each absolute path cell rewritten
    relative to the manifest's folder (the prepared set's own layout, not where the checkout lives); None when
    the file cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    folder = os.path.abspath(path.parent)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text)):
        writer.writerow([Path(os.path.relpath(cell, folder)).as_posix() if os.path.isabs(cell) else cell
                         for cell in row])
    return hashlib.sha256(out.getvalue().encode("utf-8")).hexdigest()[:16]


def dataset_provenance(prepared: dict, subjects: list[str], train_subjects: list[str] | None = None,
                       train_clips: int | None = None, prepared_dir: str | Path | None = None) -> dict:
    """The provenance record of a run's data: ``prepared`` is the prepared set's ``prepare.json`` settings,
    ``subjects`` one entry per clip of the set the run read, ``train_*`` the fold's training part."""
    manifest = Path(str(prepared.get("manifest") or ""))
    generator, source = None, None
    for record, (renderer, _, _) in GENERATOR_RECORDS.items():
        path = manifest.parent / record
        if prepared.get("manifest") and path.is_file():
            settings = json.loads(path.read_text())
            generator = {"record": record, "kind": _generator_kind(record, settings), "renderer": renderer,
                         "settings": settings}
            break
    src = source_record_path(manifest) if prepared.get("manifest") else None
    if generator is None and src is not None and src.is_file():
        source = str(json.loads(src.read_text()).get("source") or "") or None
    if generator is not None:
        origin, faces, real = "synthetic", GENERATOR_RECORDS[generator["record"]][1], False
    elif source is not None:
        origin, faces, real = "source", "real", True
    else:
        origin, faces, real = "unknown", "unknown", None
    fingerprint_file = Path(prepared_dir) / "manifest.csv" if prepared_dir else manifest
    return {"known": True, "origin": origin, "generator": generator, "source": source, "real_faces": real,
            "faces": faces, "manifest": {"path": str(manifest) if prepared.get("manifest") else None,
                                         "sha256": manifest_fingerprint(fingerprint_file)},
            "subjects": len(set(subjects)), "clips": len(subjects),
            "train_subjects": len(set(train_subjects)) if train_subjects is not None else None,
            "train_clips": train_clips}


def read_provenance(ckpt: dict) -> dict:
    """A checkpoint's provenance record; ``{"known": False}`` for one from before the record existed."""
    rec = ckpt.get("provenance")
    return dict(rec) if isinstance(rec, dict) and rec.get("known") else dict(UNKNOWN)


def describe(prov: dict) -> str:
    """One line: ``trained on synthetic cartoon faces (unmask synth --kind masked, cartoon renderer): 6 subjects,
    144 clips (of 8 subjects, 192 clips); manifest 1a2b3c4d5e6f7a8b``."""
    if not prov.get("known"):
        return "trained on: unknown (a checkpoint from before provenance was recorded)"
    if prov["origin"] == "synthetic":
        g = prov["generator"]
        what = f"synthetic {prov['faces']} faces (unmask synth --kind {g['kind']}, {g['renderer']} renderer)"
    elif prov["origin"] == "source":
        what = f"real faces (source adapter {prov['source']})"
    else:
        what = "faces of unknown origin (no generator or source record beside the manifest)"
    counts = f"{prov['subjects']} subjects, {prov['clips']} clips"
    if prov.get("train_subjects") is not None:
        counts = f"{prov['train_subjects']} subjects, {prov['train_clips']} clips for training (of {counts})"
    sha = (prov.get("manifest") or {}).get("sha256")
    return f"trained on {what}: {counts}" + (f"; manifest {sha}" if sha else "")


def synthetic_warning(prov: dict) -> str:
    """The plain warning a reading of a real input carries when the model has seen no real face ('' otherwise)."""
    if prov.get("known") and prov.get("real_faces") is False:
        return "trained only on synthetic faces: its reading of a real face is not evidence"
    return ""


__all__ = ["UNKNOWN", "GENERATOR_RECORDS", "dataset_provenance", "manifest_fingerprint", "read_provenance",
           "describe", "synthetic_warning", "write_source_record", "source_record_path"]
