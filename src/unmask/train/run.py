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
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
import yaml

import unmask
from unmask.config import Config, flatten, from_dict, save_config
from unmask.errors import UnmaskError
from unmask.train.protocols import make_folds

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
    if previous.to_dict() != cfg.to_dict():
        old, new = flatten(previous.to_dict()), flatten(cfg.to_dict())
        diff = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
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


def prepared_set(cfg: Config, out: Path, *, progress: bool = True):
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
              argv: list[str] | None = None) -> Path:
    from unmask.eval.report import write_report, write_summary
    from unmask.data.datasets import load_frames
    from unmask.models import backbone_frozen
    from unmask.runtime import resolve_device, seed_everything
    from unmask.train.engine import backbone_init, build_model, build_objective, fit_folds
    from unmask.train.features import cached_features

    out = Path(out)
    if jobs < 1:
        raise UnmaskError(f"--jobs must be at least 1 (got {jobs})")
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
    device = resolve_device(cfg.runtime.device)

    # one model up front, built for the data's tasks: its preprocessing sizes the frames; with a frozen backbone
    # it extracts the features
    prepared = prepared_set(cfg, out, progress=progress)
    seed_everything(cfg.runtime.seed)
    model = build_model(cfg, prepared.manifest.tasks, clip_input=cfg.data.paradigm == "clip")
    build_objective(cfg, model)  # a bad loss setting (e.g. an unknown estimator) fails here, before extraction
    size = model.data_config["input_size"][-1]
    data = load_frames(prepared, cfg.data.paradigm, masked_only=cfg.data.masked_only, size=size,
                       lazy={"auto": "auto", "always": True, "never": False}[cfg.data.lazy],
                       memory_gb=cfg.data.memory_gb)
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
        features = cached_features(cfg, data, model.backbone, cache_dir, device=device, progress=progress,
                                   tokens=getattr(model, "uses_tokens", False))
    log.info("%d fold(s), %d to train, %d clips, paradigm %s, %s", len(folds), len(todo), len(data),
             data.paradigm, "cached features" if features is not None else "image path")

    # every fold starts from the same backbone weights: the ones that extracted the features
    init = backbone_init(model)
    # cached features: the heads of all folds train at once as one stack (--jobs N: N stacks in N processes);
    # the image path trains one fold at a time (--jobs N: N folds in parallel)
    groups = ([todo[j::jobs] for j in range(jobs)] if features is not None else [[f] for f in todo])
    groups = [g for g in groups if g]
    if jobs > 1 and len(groups) > 1:
        _run_parallel(cfg, groups, data, features, init, out, jobs, progress)
    else:
        for group in (groups if features is not None else tqdm_folds(groups, progress)):
            fit_folds(cfg, group, data, [out / "folds" / f.name for f in group], features=features, init=init,
                      device=device, progress=progress)
    summary = write_summary(out, folds)
    write_report(out, summary)
    return out


def tqdm_folds(groups, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(groups, desc="folds", unit="fold", disable=not progress or len(groups) < 2)


def _fold_worker(cfg_dict, group, data, features, init, out, threads):
    from unmask.train.engine import fit_folds

    torch.set_num_threads(threads)
    fit_folds(from_dict(cfg_dict), group, data, [Path(out) / "folds" / f.name for f in group], features=features,
              init=init, progress=False)
    return [f.name for f in group]


def _run_parallel(cfg, groups, data, features, init, out: Path, jobs: int, progress: bool = True) -> None:
    import multiprocessing as mp

    from tqdm.auto import tqdm

    # runtime.threads, where set, holds in every worker as in one process: another thread count sums floats
    # in another order, and a run's numbers must not depend on --jobs
    threads = cfg.runtime.threads or max(1, (os.cpu_count() or 1) // jobs)
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        futures = [pool.submit(_fold_worker, cfg.to_dict(), g, data, features, init, str(out), threads)
                   for g in groups]
        bar = tqdm(total=sum(len(g) for g in groups), desc="folds", unit="fold", disable=not progress)
        for fut in as_completed(futures):
            bar.update(len(fut.result()))
        bar.close()
