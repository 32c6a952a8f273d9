"""Typed experiment configuration: dataclass defaults <- YAML file <- ``key=value`` overrides.

Every value has a type; unknown keys and values of the wrong type are errors naming the key. The resolved
configuration is written into every run directory (``config.yaml``) and into every checkpoint.

Example::

    cfg = load_config("configs/dsid_paper.yaml", ["loss.args.dsid.alpha=0.3", "optim.epochs=50"])
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from unmask.data.paradigms import PARADIGMS
from unmask.errors import UnmaskError


@dataclass
class DataConfig:
    manifest: str = ""  # manifest CSV (ignored when `prepared` holds its own copy)
    prepared: str = ""  # folder written by `unmask prepare`; empty: <run>/prepared is made from `manifest`
    detector: str = "auto"  # used only when the run prepares the manifest itself
    paradigm: str = "apex"  # apex | onset | clip (k frames between onset and offset)
    masked_only: bool = True  # drop clips flagged congruent (DSID trains on masked clips only)
    lazy: str = "auto"  # auto (read crops lazily when holding them would exceed memory_gb) | always | never
    memory_gb: float = 4.0  # the most the frames of a run may take in memory before they are read lazily
    # clip windows (unmask.train.windows): T consecutive frames of the prepared clip's K per example; 0: all K
    window: int = 0  # >0: training takes a random start per clip and epoch (temporal jitter)
    test_windows: str = "all"  # window>0, validation and test: all (every non-overlapping window, probabilities
    #                             averaged per clip) | fixed (one window per clip, its start seeded by clip id)


@dataclass
class ModelConfig:
    name: str = "dsid"  # a registered model (unmask.models.list_models())
    backbone: str = "clip_vit_b16"
    weights: str | None = None  # local file, a library tag (online only), or null for random init
    mode: str = "frozen"  # frozen | finetune | last_n_blocks:N (models that train their backbone)
    backbone_args: dict = field(default_factory=dict)  # e.g. {img_size: 64} (tiny backbones)
    # per-model settings, one section per model name: {dsid: {adapter_dim: 512, ...}, single_stream: {task: true}};
    # the chosen model's section is passed to its factory, every section is checked against its factory
    args: dict = field(default_factory=dict)


@dataclass
class LossConfig:
    name: str = "auto"  # auto: the model's default (DSID: dsid; others: tasks); or unmask.losses.list_losses()
    # per-loss settings, one section per loss name: {dsid: {alpha: 0.5, beta: 1.0, estimator: biased}}
    args: dict = field(default_factory=dict)


@dataclass
class AugmentConfig:
    hflip: bool = True
    rotation: float = 10.0  # degrees
    color_jitter: float = 0.2  # brightness/contrast/saturation strength; 0 disables
    crop_scale: float = 1.0  # RandomResizedCrop: the box covers [crop_scale, 1] of the area; 1 disables
    normalization: str = "imagenet"  # imagenet (paper) | backbone (the backbone's own mean/std)


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamw | sgd (torch.optim)
    lr: float = 5e-4
    weight_decay: float = 5e-4
    momentum: float = 0.9  # sgd only
    batch_size: int = 32
    epochs: int = 200
    patience: int = 50  # early stopping on the validation metric
    monitor: str = "auto"  # auto (accuracy of the model's first task) | <task>_acc | <task>_f1 (multi-label)
    schedule: str = "none"  # none | cosine | step (per epoch)
    warmup_epochs: int = 0  # linear warm-up of the learning rate
    step_size: int = 30  # step schedule: epochs between decays
    gamma: float = 0.1  # step schedule: decay factor
    grad_clip: float = 0.0  # max gradient norm; 0: no clipping
    # mixup with the loss mixed alike, lambda ~ Beta(mixup, mixup) per fold and batch, on what optim.mix_on says;
    # 0: off
    mixup: float = 0.0
    # cutmix, lambda ~ Beta(cutmix, cutmix): with mix_on=features, its temporal analogue on the heads' inputs (a
    # span of 1 - lambda of each clip's frames replaced by the same span of another clip of the batch; clips only),
    # with mix_on=pixels a box of 1 - lambda of the image area; the loss mixed by the share kept; 0: off
    cutmix: float = 0.0
    mix_switch: float = 0.5  # with both mixup and cutmix on: the probability that a batch uses cutmix
    # where mixup / cutmix act: features (the heads' inputs; cutmix = a span of frames) or pixels (the images
    # before the backbone, as the releases do; cutmix = a box, the same in every frame; the image path only:
    # model.mode=finetune or features.cache=never)
    mix_on: str = "features"


@dataclass
class ProtocolConfig:
    name: str = "loso"  # loso | kfold | split
    k: int = 5  # kfold: number of subject folds
    split_file: str = ""  # split: CSV with columns subject,split (train | val | test)
    validation: str = "subjects"  # subjects (drawn from training subjects) | test_subject (optimistic!)
    val_subjects: int = 1  # how many training subjects validate each fold
    folds: list[str] | None = None  # run only these folds (test subject names), e.g. [s01, s03]


@dataclass
class FeaturesConfig:
    cache: str = "auto"  # auto (cache when the backbone is frozen) | always | never
    views: int = 4  # augmented views per image; view 0 is unaugmented
    cache_dir: str = ""  # empty: <prepared>/features
    batch_size: int = 64  # images per backbone forward (a clip of K frames counts K)
    precision: str = "auto"  # auto (bf16 where supported) | bf16 | fp32
    max_gb: float = 16.0  # refuse a feature cache that would need more memory than this


@dataclass
class RuntimeConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision on CUDA
    threads: int = 0  # torch threads per process; 0: torch's default
    tensorboard: bool = False
    save_every_s: float = 30.0  # resume state is written after an epoch when this much time has passed
    # where fanned-out work runs (docs/cluster.md); none of these change a result (EXECUTION_KEYS)
    executor: str = "local"  # local (this machine's processes) | ray
    # auto: the cluster `ray start` made on this node, else a local instance (said on stderr) | local: a new local
    # instance on this machine | ray://HOST:PORT: that cluster (Ray Client), nothing else
    ray_address: str = "auto"
    ray_cpus: float = 1.0  # CPUs each Ray task declares (and the torch threads it uses)
    ray_gpus: float = 0.0  # GPUs each Ray task declares (fractions share a GPU)
    ray_memory_gb: float = 0.0  # memory each Ray task declares; 0: none declared
    ray_retries: int = 1  # times a task whose worker died is run again


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def copy(self) -> Config:
        return from_dict(self.to_dict())


# ---------------------------------------------------------------------------------------------- merging
def _check_value(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to type ``tp`` or raise UnmaskError naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(key, value, a)
            except UnmaskError:
                pass  # try the union's next type; the error below names them all
        raise UnmaskError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise UnmaskError(f"config key '{key}': expected a list, got {value!r}")
        return [_check_value(key, v, item) for v in value]
    if tp is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise UnmaskError(f"config key '{key}': expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UnmaskError(f"config key '{key}': expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UnmaskError(f"config key '{key}': expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise UnmaskError(f"config key '{key}': expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, bool):  # YAML reads a bare true (e.g. model.task=true) as a boolean
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        raise UnmaskError(f"config key '{key}': expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp}")


def _type_name(tp: Any) -> str:
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(tp)) or str(tp)


def _merge(obj: Any, data: dict, prefix: str = "") -> None:
    if not isinstance(data, dict):
        raise UnmaskError(f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise UnmaskError(f"unknown config key '{full}'; valid keys here: {', '.join(names)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value, full + ".")
        elif isinstance(current, dict) and isinstance(value, dict):
            setattr(obj, key, _deep_merge(current, _check_value(full, value, dict)))
        else:
            setattr(obj, key, _check_value(full, value, hints[key]))


def _deep_merge(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        out[k] = _deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def from_dict(data: dict) -> Config:
    cfg = Config()
    _merge(cfg, data or {})
    return cfg


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of ``cfg`` with ``key=value`` overrides merged in (types checked, values not yet validated)."""
    out = cfg.copy()
    _merge(out, parse_overrides(overrides))
    return out


def parse_overrides(items: list[str]) -> dict:
    """``["loss.args.dsid.alpha=0.3", "protocol.folds=[s01,s02]"]`` -> nested dict (values parsed as YAML scalars)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise UnmaskError(f"override {item!r} is not of the form key=value (e.g. loss.args.dsid.alpha=0.3)")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError:
            value = text
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def packaged_configs() -> dict[str, Path]:
    """Configs shipped with the package (``configs/`` in the repository), by name."""
    return {p.stem: p for p in sorted((Path(__file__).parent / "configs").glob("*.yaml"))}


def read_yaml_mapping(path: str | Path) -> dict:
    """A YAML file that must hold a mapping; a syntax error or another shape is an UnmaskError naming it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UnmaskError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise UnmaskError(f"{path} must hold a mapping")
    return data


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file() and str(path) in packaged_configs():
        path = packaged_configs()[str(path)]  # a bare name such as "dsid_paper"
    if not path.is_file():
        raise UnmaskError(f"config file not found: {path}; packaged configs: {', '.join(packaged_configs())}")
    data = read_yaml_mapping(path)
    data.pop("description", None)  # free text for people
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, *,
                check: bool = True) -> Config:
    """Defaults <- YAML ``path`` (a file or a packaged config's name) <- ``key=value`` overrides. Types are
    checked while merging; values and model/loss arguments by :func:`validate` (``check=False``: the caller
    validates after changing the config further)."""
    cfg = Config()
    if path:
        _merge(cfg, load_yaml(path))
    if overrides:
        _merge(cfg, parse_overrides(overrides))
    if check:
        validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Checks of values (types are checked while merging)."""
    choices = {
        "data.paradigm": (cfg.data.paradigm, PARADIGMS),
        "augment.normalization": (cfg.augment.normalization, ("imagenet", "backbone")),
        "data.lazy": (cfg.data.lazy, ("auto", "always", "never")),
        "data.test_windows": (cfg.data.test_windows, ("all", "fixed")),
        "optim.name": (cfg.optim.name, ("adam", "adamw", "sgd")),
        "optim.schedule": (cfg.optim.schedule, ("none", "cosine", "step")),
        "optim.mix_on": (cfg.optim.mix_on, ("features", "pixels")),
        "protocol.name": (cfg.protocol.name, ("loso", "kfold", "split")),
        "protocol.validation": (cfg.protocol.validation, ("subjects", "test_subject")),
        "features.cache": (cfg.features.cache, ("auto", "always", "never")),
        "features.precision": (cfg.features.precision, ("auto", "bf16", "fp32")),
        "runtime.device": (cfg.runtime.device, ("auto", "cpu", "cuda")),
        "runtime.executor": (cfg.runtime.executor, ("local", "ray")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise UnmaskError(f"config key '{key}': {value!r} is not one of {', '.join(allowed)}")
    positive = {"optim.batch_size": cfg.optim.batch_size, "optim.epochs": cfg.optim.epochs,
                "features.views": cfg.features.views, "optim.patience": cfg.optim.patience}
    for key, n in positive.items():
        if n < 1:
            raise UnmaskError(f"config key '{key}' must be >= 1, got {n}")
    if not 0 < cfg.augment.crop_scale <= 1:
        raise UnmaskError(f"config key 'augment.crop_scale' is the smallest share of the area a random crop keeps: "
                          f"it must be in (0, 1] (1: no crop), got {cfg.augment.crop_scale}")
    if cfg.data.window < 0:
        raise UnmaskError(f"config key 'data.window' must be >= 0 (0: the whole prepared clip), got {cfg.data.window}")
    if cfg.data.window and cfg.data.paradigm != "clip":
        raise UnmaskError(f"config key 'data.window' cuts windows from clips: it needs data.paradigm=clip, not "
                          f"{cfg.data.paradigm}")
    if cfg.protocol.val_subjects < 1 and cfg.protocol.validation == "subjects":
        raise UnmaskError("config key 'protocol.val_subjects' must be >= 1 when protocol.validation=subjects")
    if cfg.optim.mixup < 0 or cfg.optim.cutmix < 0 or not 0 <= cfg.optim.mix_switch <= 1:
        raise UnmaskError("config keys 'optim.mixup' and 'optim.cutmix' must be >= 0 and 'optim.mix_switch' in [0, 1]")
    if cfg.optim.cutmix and cfg.optim.mix_on == "features" and not cfg.data.paradigm.startswith("clip"):
        raise UnmaskError(f"config key 'optim.cutmix' mixes spans of frames: it needs clips (data.paradigm=clip), not "
                          f"{cfg.data.paradigm}")
    if cfg.optim.warmup_epochs < 0 or cfg.optim.grad_clip < 0:
        raise UnmaskError("config keys 'optim.warmup_epochs' and 'optim.grad_clip' must be >= 0")
    if cfg.runtime.ray_cpus <= 0 or cfg.runtime.ray_gpus < 0 or cfg.runtime.ray_memory_gb < 0 or cfg.runtime.ray_retries < 0:
        raise UnmaskError("config keys 'runtime.ray_cpus' must be > 0 and 'runtime.ray_gpus', 'runtime.ray_memory_gb', "
                          "'runtime.ray_retries' >= 0")
    if not (cfg.runtime.ray_address in ("auto", "local") or cfg.runtime.ray_address.startswith("ray://")):
        raise UnmaskError(f"config key 'runtime.ray_address': {cfg.runtime.ray_address!r} is not auto, local or "
                          "ray://HOST:PORT")
    check_args(cfg)


def check_args(cfg: Config) -> None:
    """Every ``model.args`` / ``loss.args`` section against its factory's signature (names are checked too)."""
    from unmask.losses import LOSSES, check_loss_args
    from unmask.models import BACKBONES, MODELS, check_model_args
    from unmask.registry import coerce_kwargs

    MODELS.get(cfg.model.name)  # an unknown model name lists the known ones
    cfg.model.backbone_args = coerce_kwargs(BACKBONES.get(cfg.model.backbone), cfg.model.backbone_args)
    for name, args in cfg.model.args.items():
        if not isinstance(args, dict):
            raise UnmaskError(f"config key 'model.args.{name}' must be a mapping of {name}'s arguments")
        check_model_args(name, cfg.model.backbone, {**cfg.model.backbone_args, **args})
        cfg.model.args[name] = coerce_kwargs(MODELS.get(name), args)
    if cfg.loss.name != "auto":
        LOSSES.get(cfg.loss.name)
    for name, args in cfg.loss.args.items():
        if not isinstance(args, dict):
            raise UnmaskError(f"config key 'loss.args.{name}' must be a mapping of {name}'s arguments")
        check_loss_args(name, args)
        cfg.loss.args[name] = coerce_kwargs(LOSSES.get(name), args)


#: Keys that choose where a run's work happens, never what it computes: a run may resume under other values
EXECUTION_KEYS = ("runtime.executor", "runtime.ray_address", "runtime.ray_cpus", "runtime.ray_gpus",
                  "runtime.ray_memory_gb", "runtime.ray_retries")


def flatten(d: dict, prefix: str = "") -> dict:
    """``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": 0.1}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
