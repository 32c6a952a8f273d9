"""Data for ``reproduce``: the user's manifest prepared once, or (``--quick``) the synthetic sets.

Quick mode writes each synthetic preset it needs into ``OUT/data/synth`` (``default``) and
``OUT/data/synth_<preset>`` (e.g. ``synth_hard``), prepares them at the crop size ``quick.yaml`` names, and
returns ``{preset: prepared folder}``. Both steps resume, so a rerun costs nothing.

Quick mode's tiny backbones have no published weights, and frozen random features leave every head at chance.
So, like the paper's frozen CLIP, they are *pretrained elsewhere*: on AU-intensity regression
(:func:`unmask.train.pretrain.pretrain_au`) over one more synthetic set of *other* people (``quick.yaml``
``pretrain``: its own seed, so no identity of the evaluation sets), written once into ``OUT/data/pretrain``.
Each tiny backbone is pretrained once into ``OUT/data/pretrain/<backbone>_au.<ext>`` and every quick run that
uses it loads that file frozen; an existing file is reused, so a rerun (or another table) pretrains nothing.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from unmask.errors import UnmaskError
from unmask.experiments.tables import read_settings

log = logging.getLogger("unmask")


def synth_dir(out: Path, preset: str) -> Path:
    return out / "data" / ("synth" if preset == "default" else f"synth_{preset}")


def quick_datasets(out: Path, presets: list[str], *, progress: bool = True) -> dict[str, str]:
    from unmask.data.prepare import prepare
    from unmask.synth.masked import SynthConfig, generate

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


# ----------------------------------------------------------------------------------- AU pretraining
#: weights file format per backbone family (see unmask.train.pretrain.save_backbone_weights)
def weights_suffix(backbone: str) -> str:
    return ".pt" if "clip" in backbone else ".safetensors"


def pretrain_dir(out: Path) -> Path:
    return Path(out) / "data" / "pretrain"


def pretrained_weights(out: Path) -> dict[str, str]:
    """Where quick mode's AU-pretrained weights live, per tiny backbone: ``OUT/data/pretrain/<bb>_au.<ext>``
    (absolute, as every run config names it). The files may not exist yet: :func:`quick_pretrain` writes them."""
    settings = read_settings("quick")
    tiny = list(dict.fromkeys((settings.get("backbones") or {}).values()))
    root = pretrain_dir(out).resolve()
    return {bb: str(root / f"{bb}_au{weights_suffix(bb)}") for bb in tiny}


def pretraining_set(out: Path, *, progress: bool = True) -> Path:
    """The synthetic set of other people the backbones are pretrained on (generated and prepared once)."""
    from unmask.data.prepare import prepare
    from unmask.synth.masked import SynthConfig, generate

    settings = read_settings("quick")
    synth = dict(settings.get("synth") or {})
    workers = int(synth.pop("workers", 1))
    pre = dict(settings.get("pretrain") or {})
    synth.update(subjects=int(pre.get("subjects", 4)), seed=int(pre.get("seed", 1000)))
    folder = pretrain_dir(out) / "synth"
    log.info("pretraining set (%d other subjects, seed %d) -> %s", synth["subjects"], synth["seed"], folder)
    manifest = generate(folder, SynthConfig.from_preset(str(pre.get("preset", "default")), **synth),
                        workers=workers, progress=progress)
    prep = dict(settings.get("prepare") or {})
    prepared = pretrain_dir(out) / "prepared"
    result = prepare(manifest, prepared, size=int(prep.get("size", 64)), detector=str(prep.get("detector", "annotated")),
                     masked_only=False, progress=progress)
    if result.failed:
        raise UnmaskError(f"{result.failed} pretraining clip(s) failed to prepare; see {prepared / 'failures.csv'}")
    return prepared


def _pretrain_one(prepared: str, target: str, backbone: str, kwargs: dict, threads: int, progress: bool) -> str:
    """Pretrain into a temporary name, then rename: a file under the final name is always complete.

    ``threads`` is fixed by quick.yaml, whatever ``--jobs`` and the machine's cores (see
    :func:`~unmask.train.pretrain.pretrain_au`)."""
    from unmask.train import pretrain as P

    target_path = Path(target)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = target_path.with_name(f"{target_path.stem}.tmp{os.getpid()}{target_path.suffix}")
    P.pretrain_au(prepared, tmp, backbone=backbone, progress=progress, threads=threads, **kwargs)
    os.replace(f"{tmp}.json", f"{target}.json")
    os.replace(tmp, target)
    log.info("AU-pretrained %s -> %s", backbone, target)
    return target


def quick_pretrain(out: Path, needed: dict[str, dict], *, jobs: int = 1, progress: bool = True) -> list[str]:
    """AU-pretrain every backbone of ``needed`` (backbone -> ``{"path", "img_size"}``, from
    :func:`unmask.experiments.runner.pretraining_needed`) whose weights file is missing; returns the backbones
    pretrained now. An existing file is reused (its sidecar must record the same input size). ``jobs > 1``
    pretrains that many backbones at once in processes; ``jobs == 1`` stays in this process. Either way each
    uses quick.yaml's ``pretrain.threads`` torch threads, so the weights do not depend on ``jobs``."""
    import json

    todo = {}
    for bb, want in needed.items():
        path = Path(want["path"])
        if not path.is_file():
            todo[bb] = want
            continue
        sidecar = Path(f"{path}.json")
        made = json.loads(sidecar.read_text()).get("img_size") if sidecar.is_file() else want["img_size"]
        if made != want["img_size"]:
            raise UnmaskError(f"{path} was pretrained at input size {made}, these runs use {want['img_size']}; "
                              "choose another --out (or delete the file to pretrain again)")
        log.info("AU-pretrained %s: reusing %s", bb, path)
    if not todo:
        return []
    settings = read_settings("quick")
    pre = dict(settings.get("pretrain") or {})
    epochs = pre.get("epochs", 12)
    threads = int(pre.get("threads", 1))
    prepared = str(pretraining_set(out, progress=progress))

    def kwargs(bb: str) -> dict:
        n = int(epochs.get(bb, 12) if isinstance(epochs, dict) else epochs)
        return {"img_size": todo[bb]["img_size"], "epochs": n, "lr": float(pre.get("lr", 2e-3)),
                "batch_size": int(pre.get("batch_size", 32)), "seed": int(pre.get("train_seed", 0))}

    order = sorted(todo, key=lambda bb: -kwargs(bb)["epochs"])  # longest first: parallel ones end together
    for bb in order:
        log.info("AU-intensity pretraining of %s (%d epochs) on the pretraining set -> %s", bb,
                 kwargs(bb)["epochs"], todo[bb]["path"])
    if jobs <= 1 or len(order) == 1:
        for bb in order:
            _pretrain_one(prepared, todo[bb]["path"], bb, kwargs(bb), threads, progress)
        return order
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(min(jobs, len(order)), mp_context=ctx) as pool:
        futures = [pool.submit(_pretrain_one, prepared, todo[bb]["path"], bb, kwargs(bb), threads, False)
                   for bb in order]
        for fut in futures:
            fut.result()
    return order
