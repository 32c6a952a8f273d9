"""``unmask tune``: a Ray Tune search over declared config keys, then the chosen setting under the protocol.

The search space is a YAML mapping from config keys to a list (a choice) or one distribution::

    loss.args.dsid.alpha: [0.1, 0.5, 0.9]
    optim.lr: {loguniform: [1.0e-4, 1.0e-2]}
    loss.args.dsid.beta: {uniform: [0.5, 2.0]}

Each trial trains every fold of the protocol (one stack with cached features) in ``OUT/trials/<id>`` and is
scored after every epoch by the mean over folds of the validation metric early stopping watches
(``val_<task>_acc``): the validation subjects are drawn from each fold's *training* subjects, so no test
subject's clip is ever scored. ASHA stops weak trials early. The best setting then runs once under the
normal protocol in ``OUT/final``; ``OUT/tune.md`` and ``tune.json`` state the space, the budget, every trial's
score and the chosen values. One setting serves all folds, so a subject that is tested in one fold validates
in another: the search is not nested (docs/cluster.md).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from unmask.config import Config, from_dict, read_yaml_mapping, validate, with_overrides
from unmask.errors import UnmaskError

log = logging.getLogger("unmask")

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
METRIC = "val_score"


def read_space(path: str | Path, cfg: Config) -> dict:
    """The search space in ``path`` as ``{key: {kind: args}}``; every key and every value is checked against
    ``cfg`` (an unknown key or a value of the wrong type names the key and the file)."""
    raw = read_yaml_mapping(path)
    if not raw:
        raise UnmaskError(f"{path}: the search space is empty; e.g. `optim.lr: {{loguniform: [1.0e-4, 1.0e-2]}}`")
    space = {}
    for key, spec in raw.items():
        if isinstance(spec, list):
            spec = {"choice": spec}
        if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in DISTRIBUTIONS):
            raise UnmaskError(f"{path}: {key}: expected a list of values or one of "
                              f"{{{' | '.join(DISTRIBUTIONS)}: [...]}}, got {spec!r}")
        (kind, args), = spec.items()
        if not isinstance(args, list) or not args or (kind != "choice" and len(args) != 2):
            raise UnmaskError(f"{path}: {key}: {kind} needs {'a list of values' if kind == 'choice' else '[low, high]'}")
        for value in args if kind == "choice" else args[:1]:
            try:
                apply(cfg, {key: value})
            except UnmaskError as e:
                raise UnmaskError(f"{path}: {e}") from None
        space[key] = {kind: args}
    return space


def apply(cfg: Config, params: dict) -> Config:
    """``cfg`` with ``{"optim.lr": 0.001, ...}`` set and validated."""
    merged = with_overrides(cfg, [f"{k}={json.dumps(v)}" for k, v in params.items()])
    validate(merged)
    return merged


def _tune_space(space: dict) -> dict:
    from ray import tune

    return {key: getattr(tune, kind)(*(args if kind != "choice" else [args])) for key, spec in space.items()
            for kind, args in spec.items()}


def trial(params: dict, *, base: dict, root: str) -> None:
    """One trial (runs in a Ray worker): train the protocol's folds and report the mean validation score per epoch."""
    from ray import tune

    from unmask.train.engine import fit_folds
    from unmask.train.run import load_run

    cfg = apply(from_dict(base), params)
    out = Path(root) / "trials" / tune.get_context().get_trial_id()
    run = load_run(cfg, out)
    scores: dict[int, list[float]] = {}
    reported = 0

    def report(epoch: int) -> None:
        tune.report({METRIC: sum(scores[epoch]) / len(scores[epoch]), "epoch": epoch, "folds": len(scores[epoch])})

    def on_epoch_end(epoch: int, row: dict) -> None:
        nonlocal reported
        scores.setdefault(epoch, []).append(row[f"val_{run.monitor}"])  # validation subjects only
        while len(scores.get(reported + 1, ())) == len(run.folds):  # every fold has finished this epoch
            reported += 1
            report(reported)

    fit_folds(cfg, run.folds, run.data, [out / "folds" / f.name for f in run.folds], features=run.features,
              init=run.init, progress=False, on_epoch_end=on_epoch_end)
    for epoch in sorted(e for e in scores if e > reported):  # folds that stopped early leave partial epochs
        report(epoch)


def tune_run(cfg: Config, space: dict, out: str | Path, *, trials: int, grace: int = 1, progress: bool = True,
             space_file: str = "", jobs: int = 1) -> dict:
    """Search ``space`` with ``trials`` samples under ASHA, then train the best setting into ``OUT/final``."""
    from unmask.executors import RayExecutor, make_executor
    from unmask.train.run import train_run

    if trials < 1 or grace < 1:
        raise UnmaskError(f"--trials and --grace must be at least 1 (got {trials}, {grace})")
    out = Path(out).resolve()
    rt = cfg.runtime
    ray_executor = RayExecutor(rt.ray_address, rt.ray_cpus, rt.ray_gpus, rt.ray_memory_gb, rt.ray_retries)  # connects
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    cfg = load_run_check(cfg, out, ray_executor)
    trainable = tune.with_resources(tune.with_parameters(trial, base=cfg.to_dict(), root=str(out)),
                                    {"cpu": rt.ray_cpus, "gpu": rt.ray_gpus})
    # max_t one past the last epoch: ASHA stops a trial *at* max_t, which would cut off its final outputs
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=cfg.optim.epochs + 1, grace_period=grace,
                              reduction_factor=2)
    tuner = tune.Tuner(trainable, param_space=_tune_space(space),
                       tune_config=tune.TuneConfig(metric=METRIC, mode="max", num_samples=trials, scheduler=scheduler),
                       run_config=tune.RunConfig(storage_path=str(out / "ray_results"), name="search",
                                                 verbose=1 if progress else 0))
    grid = tuner.fit()
    rows = []
    for r in grid:
        rows.append({"trial": (r.metrics or {}).get("trial_id"), "params": {k: r.config[k] for k in space},
                     METRIC: (r.metrics or {}).get(METRIC),
                     "epochs": (r.metrics or {}).get("epoch"), "error": str(r.error).splitlines()[0] if r.error else None})
    scored = [r for r in rows if r[METRIC] is not None]
    if not scored:
        raise UnmaskError(f"every trial of the search failed; see {out / 'ray_results'}", [r["error"] for r in rows])
    best = max(scored, key=lambda r: r[METRIC])
    log.info("best setting %s (mean validation %s %.4f); training it under the protocol", best["params"],
             METRIC, best[METRIC])
    final = train_run(apply(cfg, best["params"]), out / "final", resume=True, jobs=jobs, progress=progress,
                      argv=["unmask", "tune"], executor=make_executor(cfg.runtime, jobs))
    record = {"space_file": space_file, "space": space,
              "budget": {"trials": trials, "max_epochs": cfg.optim.epochs, "scheduler": "ASHA", "grace_epochs": grace,
                         "reduction_factor": 2, "cpus_per_trial": rt.ray_cpus, "gpus_per_trial": rt.ray_gpus},
              "objective": "mean over folds of the validation metric early stopping watches, on validation subjects "
                           "drawn from each fold's training subjects (never a test subject)",
              "trials": rows, "chosen": best["params"], "chosen_val_score": best[METRIC], "final_run": str(final)}
    (out / "tune.json").write_text(json.dumps(record, indent=2, default=str))
    (out / "tune.md").write_text(render(record))
    return record


def load_run_check(cfg: Config, out: Path, executor: Any = None) -> Config:
    """Fail on bad data before any trial starts; prepare a manifest once (into OUT/prepared) and fill the
    feature cache once (in shards on ``executor``'s cluster), so trials only read them. Returns ``cfg`` pointing
    at the prepared set."""
    from unmask.train.run import _check_data_source, load_run, prepared_set

    _check_data_source(cfg)
    out.mkdir(parents=True, exist_ok=True)
    cfg = cfg.copy()
    cfg.data.prepared = str(prepared_set(cfg, out, progress=False).root)
    load_run(cfg, out / "final", progress=False, executor=executor)
    return cfg


def render(record: dict) -> str:
    b = record["budget"]
    lines = ["# Hyper-parameter search", "",
             f"Search space ({record['space_file'] or 'inline'}):", ""]
    lines += [f"- `{k}`: {next(iter(v))} {next(iter(v.values()))}" for k, v in record["space"].items()]
    lines += ["", f"Budget: {b['trials']} trial(s), at most {b['max_epochs']} epoch(s) each, ASHA (grace "
              f"{b['grace_epochs']} epoch(s), reduction factor {b['reduction_factor']}), {b['cpus_per_trial']:g} CPU / "
              f"{b['gpus_per_trial']:g} GPU per trial.", "",
              f"Objective: {record['objective']}. One setting serves every fold, so the search is not nested.", "",
              "| trial | " + " | ".join(f"`{k}`" for k in record["space"]) + " | validation score | epochs |",
              "|---|" + "---|" * (len(record["space"]) + 2)]
    for i, r in enumerate(record["trials"]):
        score = "failed" if r["val_score"] is None else f"{r['val_score']:.4f}"
        lines.append(f"| {i} | " + " | ".join(f"{r['params'][k]:.4g}" if isinstance(r["params"][k], float)
                                               else str(r["params"][k]) for k in record["space"])
                     + f" | {score} | {r['epochs'] or '-'} |")
    chosen = ", ".join(f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in record["chosen"].items())
    lines += ["", f"Chosen: {chosen} (validation score {record['chosen_val_score']:.4f}).", "",
              f"The chosen setting trained once under the protocol: `{record['final_run']}` (its report.md holds "
              "the test-fold results).", ""]
    return "\n".join(lines)
