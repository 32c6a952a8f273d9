"""Data for ``reproduce``: the user's manifest prepared once, or (``--quick``) the synthetic sets.

Quick mode writes each synthetic preset it needs into ``OUT/data/synth`` (``default``) and
``OUT/data/synth_<preset>`` (e.g. ``synth_hard``), prepares them at the crop size ``quick.yaml`` names, and
returns ``{preset: prepared folder}``. Both steps resume, so a rerun costs nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from unmask.errors import UnmaskError
from unmask.experiments.tables import read_settings

log = logging.getLogger("unmask")


def synth_dir(out: Path, preset: str) -> Path:
    return out / "data" / ("synth" if preset == "default" else f"synth_{preset}")


def quick_datasets(out: Path, presets: list[str], *, progress: bool = True) -> dict[str, str]:
    from unmask.data.prepare import prepare
    from unmask.data.synth import SynthConfig, generate

    settings = read_settings("quick")
    synth = dict(settings.get("synth") or {})
    workers = int(synth.pop("workers", 1))
    prep = dict(settings.get("prepare") or {})
    datasets = {}
    for preset in presets:
        folder = synth_dir(out, preset)
        log.info("synthetic set (%s preset) -> %s", preset, folder)
        manifest = generate(folder, SynthConfig.from_preset(preset, **synth), workers=workers, progress=progress)
        prepared = folder / "prepared"
        # the prepared crops sit beside the videos; generate() accepts its own folder back as long as
        # synth.json matches, so the extra subfolder does not break resuming
        result = prepare(manifest, prepared, size=int(prep.get("size", 64)), detector=str(prep.get("detector", "annotated")),
                         masked_only=True, progress=progress)
        if result.failed:
            raise UnmaskError(f"{result.failed} synthetic clip(s) failed to prepare; see {prepared / 'failures.csv'}")
        datasets[preset] = str(prepared.resolve())
    return datasets


def user_dataset(out: Path, manifest: str | None, prepared: str | None, *, detector: str,
                 progress: bool = True) -> dict[str, str]:
    """``--prepared DIR`` as is, else ``--manifest M`` prepared once into ``OUT/prepared`` for every run."""
    from unmask.data.prepare import prepare

    if prepared:
        if not Path(prepared, "manifest.csv").is_file():
            raise UnmaskError(f"--prepared {prepared} is not a folder written by `unmask prepare`")
        return {"default": str(Path(prepared).resolve())}
    if not manifest:
        raise UnmaskError("no data: pass --manifest M (or --prepared DIR from `unmask prepare`), or --quick "
                          "for the synthetic set")
    target = out / "prepared"
    result = prepare(manifest, target, detector=detector, masked_only=True, progress=progress)
    if result.failed:
        log.warning("%d clip(s) failed to prepare; see %s", result.failed, target / "failures.csv")
    return {"default": str(target.resolve())}
