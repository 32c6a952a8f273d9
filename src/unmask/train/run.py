"""A training run: prepared frames -> folds of a protocol -> fit each fold -> summary and report.

Run directory::

    config.yaml          the resolved configuration (written before training)
    run.json             unmask version, git commit, command line, start time
    folds/<fold>/        see unmask.train.engine (metrics.json marks a finished fold)
    summary.json         pooled and per-fold metrics per task (machine-readable)
    report.md            tables and figures (unmask.eval.report)

Finished folds are never recomputed; an unfinished fold resumes from its last epoch with ``resume=True``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml

import unmask
from unmask.config import EXECUTION_KEYS, Config, flatten, from_dict, save_config
from unmask.errors import UnmaskError
from unmask.train.protocols import make_folds

if TYPE_CHECKING:
    from unmask.data.datasets import FrameData
    from unmask.data.prepare import PreparedSet
    from unmask.train.protocols import Fold

log = logging.getLogger("unmask")


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _check_run_dir(cfg: Config, out: Path, resume: bool) -> None:
    cfg_path = out / "config.yaml"
    if not cfg_path.is_file():
        if out.exists() and any(out.iterdir()) and not resume:
            raise UnmaskError(f"{out} exists and is not an unmask run; choose another --out")
        return
    previous = from_dict(yaml.safe_load(cfg_path.read_text()))
    old, new = flatten(previous.to_dict()), flatten(cfg.to_dict())
    # where the work runs never changes a result: a run resumes on either executor
    diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k) and k not in EXECUTION_KEYS]
    if diff:
        if not (resume and set(d.split(":")[0] for d in diff) <= {"protocol.folds"}):
            raise UnmaskError(f"{out} holds a run with another configuration; choose another --out", diff)
    elif not resume:
        raise UnmaskError(f"{out} already holds this run; pass --resume to continue it (finished folds are kept)")


def _check_data_source(cfg: Config) -> None:
    from unmask.data.prepare import PreparedSet

    if cfg.data.prepared:
        PreparedSet(cfg.data.prepared)  # raises a clear error for a folder that is not a prepared set
    elif not cfg.data.manifest:
        raise UnmaskError("no data: set data.prepared=DIR (from `unmask prepare`) or data.manifest=CSV")
    elif not Path(cfg.data.manifest).is_file():
        raise UnmaskError(f"manifest not found: {cfg.data.manifest}")


def prepared_set(cfg: Config, out: Path, *, progress: bool = True) -> PreparedSet:
    """The prepared set for this run (preparing the manifest into <out>/prepared if needed)."""
    from unmask.data.prepare import PreparedSet, prepare

    if cfg.data.prepared:
        prepared_dir = Path(cfg.data.prepared)
    elif cfg.data.manifest:
        prepared_dir = out / "prepared"
        result = prepare(cfg.data.manifest, prepared_dir, detector=cfg.data.detector, progress=progress,
                         masked_only=cfg.data.masked_only)
        if result.failed:
            log.warning("%d clip(s) failed to prepare; see %s", result.failed, prepared_dir / "failures.csv")
    else:
        raise UnmaskError("no data: set data.prepared=DIR (from `unmask prepare`) or data.manifest=CSV")
    return PreparedSet(prepared_dir)


def train_run(cfg: Config, out: str | Path, *, resume: bool = False, jobs: int = 1, progress: bool = True,
              argv: list[str] | None = None, executor: Any = None) -> Path:
    """Train every unfinished fold of ``cfg``'s protocol into ``out``; the fold groups run on ``executor``
    (default: ``runtime.executor`` with ``jobs`` local processes)."""
    from unmask.eval.report import write_report, write_summary
    from unmask.executors import Unit, make_executor, raise_failures

    out = Path(out)
    executor = executor or make_executor(cfg.runtime, jobs)  # a Ray option without Ray fails before any work
    _check_data_source(cfg)  # before anything is written or a large backbone is built
    _check_run_dir(cfg, out, resume)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    if not (out / "run.json").is_file():
        (out / "run.json").write_text(json.dumps({
            "unmask_version": unmask.__version__, "git_commit": _git_commit(), "argv": argv or sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": torch.__version__}, indent=2))
    if cfg.runtime.threads:
        torch.set_num_threads(cfg.runtime.threads)
    run = load_run(cfg, out, progress=progress, executor=executor)
    todo = [f for f in run.folds if not (out / "folds" / f.name / "metrics.json").is_file()]
    log.info("%d fold(s), %d to train, %d clips, paradigm %s, %s", len(run.folds), len(todo), len(run.data),
             run.data.paradigm, "cached features" if run.features is not None else "image path")
    # cached features: the heads of a group of folds train at once as one stack (one group per executor slot);
    # the image path trains one fold per unit
    slots = executor.slots
    groups = ([todo[j::slots] for j in range(slots)] if run.features is not None else [[f] for f in todo])
    units = [Unit(f"folds {','.join(f.name for f in g)}", train_group, (cfg.to_dict(), str(out), [f.name for f in g]),
                  len(g)) for g in groups if g]
    failures = executor.run(units, desc="folds", progress=progress)
    summary = write_summary(out, run.folds)
    write_report(out, summary)
    raise_failures(failures, len(units), "fold group(s)")
    return out


@dataclass
class LoadedRun:
    """What every fold of a run trains from: frames, folds, cached features (or None), backbone weights, and the
    validation metric early stopping watches (e.g. ``true_acc``)."""

    data: FrameData
    folds: list[Fold]
    features: torch.Tensor | None
    init: dict
    monitor: str


_LOADED: dict[tuple[str, str], LoadedRun] = {}  # one run per process: workers reuse it across their units


def _model_and_frames(cfg: Config, out: Path, progress: bool) -> tuple[PreparedSet, Any, FrameData]:
    """The run's prepared set, its model (seeded, built for the data's tasks: its preprocessing sizes the frames;
    with a frozen backbone it extracts the features) and its frames: the same in the driver and every worker."""
    from unmask.data.datasets import load_frames
    from unmask.runtime import seed_everything
    from unmask.train.engine import build_model, build_objective

    prepared = prepared_set(cfg, out, progress=progress)
    seed_everything(cfg.runtime.seed)
    from unmask.data.paradigms import is_clip

    model = build_model(cfg, prepared.manifest.tasks, clip_input=is_clip(cfg.data.paradigm))
    build_objective(cfg, model)  # a bad loss setting (e.g. an unknown estimator) fails here, before extraction
    size = model.data_config["input_size"][-1]
    data = load_frames(prepared, cfg.data.paradigm, masked_only=cfg.data.masked_only, size=size,
                       lazy={"auto": "auto", "always": True, "never": False}[cfg.data.lazy],  # type: ignore[arg-type]
                       memory_gb=cfg.data.memory_gb)
    return prepared, model, data


def load_run(cfg: Config, out: Path, *, progress: bool = False, executor: Any = None) -> LoadedRun:
    """Prepare (if needed), load the frames, make the folds and load or extract the features of the run in
    ``out``; the same steps in the driver and in every worker, so a unit needs only the config and the path.

    ``executor``: a Ray executor extracts a missing feature cache in shards of clips on the cluster
    (:func:`extract_features_unit`); otherwise this process extracts it."""
    key = (str(Path(out).resolve()), json.dumps(cfg.to_dict(), sort_keys=True))
    if key in _LOADED:
        return _LOADED[key]
    from unmask.models import backbone_frozen
    from unmask.runtime import resolve_device
    from unmask.train.engine import backbone_init, monitor_key
    from unmask.train.features import cached_features

    device = resolve_device(cfg.runtime.device)
    prepared, model, data = _model_and_frames(cfg, out, progress)
    if not isinstance(data.images, torch.Tensor):
        log.info("frames read lazily from %s (%d clips; data.memory_gb=%g)", prepared.root, len(data),
                 cfg.data.memory_gb)
    folds = make_folds(data.subjects, name=cfg.protocol.name, k=cfg.protocol.k, split_file=cfg.protocol.split_file,
                       validation=cfg.protocol.validation, val_subjects=cfg.protocol.val_subjects,
                       seed=cfg.runtime.seed, only=cfg.protocol.folds)
    frozen = backbone_frozen(model)
    use_cache = cfg.features.cache == "always" or (cfg.features.cache == "auto" and frozen)
    if use_cache and not frozen:
        raise UnmaskError(f"features.cache=always needs a frozen backbone (model.mode={cfg.model.mode})")
    features = None
    todo = [f for f in folds if not (out / "folds" / f.name / "metrics.json").is_file()]
    if use_cache and todo:
        cache_dir = Path(cfg.features.cache_dir) if cfg.features.cache_dir else prepared.root / "features"
        shards = {}
        if executor is not None and executor.name == "ray":  # local: this process, with all its threads
            shards = {"run_shards": _shards_on(executor, cfg, out, progress), "parts": executor.slots}
        features = cached_features(cfg, data, model.backbone, cache_dir, device=device, progress=progress,
                                   tokens=getattr(model, "uses_tokens", False), **shards)
    # every fold starts from the same backbone weights: the ones that extracted the features
    _LOADED.clear()
    _LOADED[key] = LoadedRun(data, folds, features, backbone_init(model), monitor_key(cfg, model))
    return _LOADED[key]


def _shards_on(executor: Any, cfg: Config, out: Path, progress: bool) -> Callable[..., Any]:
    """``run_shards`` for :func:`~unmask.train.features.cached_features`: one executor unit per shard."""
    from unmask.executors import Unit, raise_failures

    def run(shards, path, key):
        units = [Unit(f"features {s.name}", extract_features_unit,
                      (cfg.to_dict(), str(out), str(path), [s.view, s.start, s.stop], key)) for s in shards]
        raise_failures(executor.run(units, desc="feature shards", progress=progress), len(units),
                       "feature shard(s)")

    return run


def extract_features_unit(cfg_dict: dict, out: str, path: str, shard: list[int], key: dict) -> str:
    """The unit of sharded extraction: clips ``shard[1]:shard[2]`` of view ``shard[0]`` of the cache at ``path``,
    written beside it (the driver puts the shards together)."""
    from unmask.models import backbone_frozen
    from unmask.runtime import resolve_device
    from unmask.train.features import Shard, write_shard

    cfg = from_dict(cfg_dict)
    _, model, data = _model_and_frames(cfg, Path(out), progress=False)
    if not backbone_frozen(model):
        raise UnmaskError("sharded feature extraction needs a frozen backbone")
    return str(write_shard(cfg, data, model.backbone, Path(path), Shard(*shard),
                           device=resolve_device(cfg.runtime.device), tokens=getattr(model, "uses_tokens", False),
                           expect_key=key))


def train_group(cfg_dict: dict, out: str, names: list[str]) -> list[str]:
    """The unit of ``train``: fit the folds ``names`` of the run in ``out`` (results land in out/folds/)."""
    from unmask.train.engine import fit_folds

    cfg, root = from_dict(cfg_dict), Path(out)
    run = load_run(cfg, root)
    group = [f for f in run.folds if f.name in names]
    fit_folds(cfg, group, run.data, [root / "folds" / f.name for f in group], features=run.features,
              init=run.init, progress=False)
    return names


