"""Backbone features computed once: with a frozen backbone the same input always gives the same output.

For a frozen backbone, :func:`cached_features` extracts features for V views of every image (view 0
unaugmented, views 1..V-1 augmented with seeded randomness) and stores them on disk under a key that changes
whenever anything that determines them changes (the frames, the backbone and its weights, the paradigm, the
preprocessing, the views, the seed, the precision). Training then samples one view per image per epoch and
runs only the heads; evaluation uses view 0. The stored key is compared field by field on load, never trusted
from the file name alone.

Extraction runs batched under ``torch.inference_mode``, in bf16 where the hardware supports it (CUDA, or
CPUs with AVX512-BF16/AMX) and channels-last memory for convolutional backbones. bf16 means a bf16 *copy* of
the backbone run under autocast, not autocast over fp32 weights: on the CPU, autocast alone re-casts every
weight on every call and pushes ``nn.MultiheadAttention`` (open_clip's CLIP) off its fused path onto a
``bmm`` over an expanded weight that copies it per batch element, which made CLIP ViT-B/16 *slower* in bf16
than in fp32; the copy makes it faster (``python bench/extract_rate.py`` prints both). The caller's backbone
is never modified beyond ``eval()``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm

import unmask
from unmask.data.transforms import Preprocess, build_augment, is_augmenting, normalization
from unmask.errors import UnmaskError
from unmask.io import atomic_torch_save
from unmask.models.inference import cast_backbone, resolve_precision, state_digest, uses_convolutions

if TYPE_CHECKING:
    from unmask.config import Config
    from unmask.data.datasets import FrameData, LazyFrames

log = logging.getLogger("unmask")


@torch.inference_mode()
def extract(backbone: nn.Module, images: torch.Tensor, preprocess: Preprocess, *, views: int = 1, seed: int = 0,
            batch_size: int = 64, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu", progress: bool = True,
            cast_weights: bool = True, tokens: bool = False) -> torch.Tensor:
    """Features ``[V, N, D]`` (or ``[V, N, K, D]`` for clips) of uint8 ``images`` through ``backbone``; with
    ``tokens`` the token sequences (``backbone.forward_features``: ``[V, N, (K,) T, C]``). ``batch_size`` counts
    images: clips of K frames go ``batch_size // K`` at a time, so memory does not grow with the clip length.

    View 0 is unaugmented; view v > 0 draws its augmentation from ``seed * 1000 + v`` (the caller's RNG state
    is restored afterwards). With a bf16 ``dtype`` a bf16 copy of the backbone runs under autocast
    (``cast_weights=False``: autocast over the fp32 weights, kept for ``bench/extract_rate.py``).
    """
    n = images.shape[0]
    bar = tqdm(total=views * n, desc="extracting features", unit="img", disable=not progress, leave=False)
    out = None
    for v in range(views):
        part = extract_shard(backbone, images, preprocess, Shard(v, 0, n), seed=seed, batch_size=batch_size,
                             dtype=dtype, device=device, cast_weights=cast_weights, tokens=tokens, bar=bar)
        if out is None:
            out = torch.empty(views, *part.shape)
        out[v] = part
    bar.close()
    return out


@dataclass(frozen=True)
class Shard:
    """Clips ``start:stop`` of view ``view``: a piece of a feature cache that one worker extracts."""

    view: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"view{self.view}-{self.start}-{self.stop}"


def clips_per_batch(images: torch.Tensor | LazyFrames, batch_size: int) -> int:
    return max(1, batch_size // images.shape[1]) if images.dim() == 5 else batch_size


def plan_shards(n: int, views: int, per_batch: int, parts: int) -> list[Shard]:
    """The shards a cache of ``n`` clips x ``views`` splits into for ``parts`` workers, each the same values as one
    process extracting everything: an augmented view is one shard (its random draws run in clip order), the
    unaugmented view 0 is cut into up to ``parts`` runs of whole batches (the same batches as in one process)."""
    batches = -(-n // per_batch)
    cuts = sorted({round(i * batches / max(1, parts)) * per_batch for i in range(max(1, parts))} | {n})
    view0 = [Shard(0, a, min(b, n)) for a, b in pairwise(cuts) if a < min(b, n)]
    return view0 + [Shard(v, 0, n) for v in range(1, views)]


@torch.inference_mode()
def extract_shard(backbone: nn.Module, images: torch.Tensor | LazyFrames, preprocess: Preprocess, shard: Shard, *, seed: int = 0, batch_size: int = 64,
                  dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu", cast_weights: bool = True, tokens: bool = False,
                  bar: Any = None) -> torch.Tensor:
    """The features of one :class:`Shard` (``[stop - start, ...]``); batches start at multiples of the batch from
    clip 0, as in :func:`extract`, so a shard's values equal the same rows of a whole extraction."""
    device = torch.device(device)
    backbone.eval()
    channels_last = uses_convolutions(backbone)
    low = dtype != torch.float32
    module = cast_backbone(backbone, dtype if cast_weights else torch.float32, device, channels_last)
    clip = images.dim() == 5
    per_batch = clips_per_batch(images, batch_size)
    if shard.view > 0 and (shard.start, shard.stop) != (0, images.shape[0]):
        raise ValueError(f"an augmented view is extracted whole (its random draws run in clip order), not {shard}")
    if shard.start % per_batch:
        raise ValueError(f"a shard starts at a batch boundary (a multiple of {per_batch}), not {shard}")
    rows = images if (shard.start, shard.stop) == (0, images.shape[0]) else _rows(images, shard.start, shard.stop)
    out = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 1000 + shard.view)  # each view's augmentation is reproducible on its own
        for start, batch in _batches(rows, per_batch):
            x = preprocess(batch, train=shard.view > 0)
            if clip:
                x = x.flatten(0, 1)  # [B*K, 3, H, W]
            x = x.to(device, dtype=dtype if cast_weights else torch.float32, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=dtype, enabled=low):
                f = module.forward_features(x) if tokens else module(x)  # [B, T, C] or [B, D]
            f = f.float().cpu()
            if clip:
                f = f.view(batch.shape[0], batch.shape[1], *f.shape[1:])
            if out is None:
                out = torch.empty(shard.stop - shard.start, *f.shape[1:])
            out[start:start + batch.shape[0]] = f
            if bar is not None:
                bar.update(batch.shape[0])
    return out


def _rows(images, start: int, stop: int):
    return images.rows(start, stop) if hasattr(images, "rows") else images[start:stop]


def _batches(images, batch_size: int):
    """``(start, uint8 batch)`` in order: slices of an in-memory stack, or a lazy set streamed by its loader."""
    if hasattr(images, "batches"):
        yield from images.batches(batch_size)
        return
    for start in range(0, images.shape[0], batch_size):
        yield start, images[start:start + batch_size]


def cache_key(cfg: Config, data: FrameData, backbone: Any) -> dict:
    """Everything that determines the cached features."""
    return {
        "unmask": unmask.__version__,
        "frames": data.fingerprint,
        "paradigm": data.paradigm,
        "backbone": cfg.model.backbone,
        "backbone_args": cfg.model.backbone_args,
        "weights": cfg.model.weights,
        "backbone_state": state_digest(backbone),
        "input_size": list(backbone.data_config["input_size"]),
        "normalization": list(map(list, normalization(cfg.augment, backbone.data_config))),
        "augment": {"hflip": cfg.augment.hflip, "rotation": cfg.augment.rotation,
                    "color_jitter": cfg.augment.color_jitter},
        "views": cfg.features.views,
        "seed": cfg.runtime.seed,
        "precision": cfg.features.precision,
    }


def feature_bytes(backbone: Any, data: FrameData, views: int, tokens: bool) -> int:
    """What the cache of ``data`` will hold in memory (float32), from one probe forward of a blank image."""
    size = backbone.data_config["input_size"][-1]
    with torch.inference_mode():
        probe = backbone.eval().forward_features(torch.zeros(1, 3, size, size)) if tokens else None
    per_image = probe[0].numel() if tokens else backbone.num_features
    frames = data.images.shape[1] if data.images.dim() == 5 else 1
    return 4 * views * len(data) * frames * per_image


def cache_path(cfg: Config, data: FrameData, backbone: Any, cache_dir: str | Path, *, device: torch.device | str = "cpu", tokens: bool = False,
               warn: bool = False) -> tuple[Path, dict]:
    """Where the cache of ``data`` lives, and its key (everything its values depend on)."""
    key = cache_key(cfg, data, backbone)
    key["tokens"] = tokens
    dtype = resolve_precision(cfg.features.precision, torch.device(device))
    key["dtype"] = str(dtype)  # what "auto" resolved to here: a CUDA cache is not a CPU-fp32 cache
    if not is_augmenting(cfg.augment) and cfg.features.views > 1:
        if warn:
            log.warning("features.views=%d but augmentation is off: every view would be identical; using 1 view",
                        cfg.features.views)
        key["views"] = 1
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(cache_dir) / f"{cfg.model.backbone}-{data.paradigm}-{digest}.pt", key


def shard_file(path: Path, shard: Shard) -> Path:
    return path.with_name(f"{path.stem}.{shard.name}.pt")


def write_shard(cfg: Config, data: FrameData, backbone: Any, path: Path, shard: Shard, *, device: torch.device | str = "cpu", tokens: bool = False,
                expect_key: dict | None = None) -> Path:
    """Extract one shard of the cache at ``path`` into its own file (written atomically: a finished shard is
    kept when its siblings fail, and not extracted again). ``expect_key``: the driver's key; a worker whose
    frames or backbone weights differ refuses rather than mixing values."""
    _, key = cache_path(cfg, data, backbone, path.parent, device=device, tokens=tokens)
    if expect_key is not None and key != expect_key:
        diff = sorted(k for k in set(key) | set(expect_key) if key.get(k) != expect_key.get(k))
        raise UnmaskError(f"a worker's features would differ from the driver's ({', '.join(diff)}): the workers "
                          "must see the same prepared data and weights files (a shared filesystem)")
    mean, std = normalization(cfg.augment, backbone.data_config)
    feats = extract_shard(backbone, data.images, Preprocess(mean, std, build_augment(cfg.augment)), shard,
                          seed=cfg.runtime.seed, batch_size=cfg.features.batch_size, dtype=_dtype(key), device=device,
                          tokens=tokens)
    target = shard_file(path, shard)
    atomic_torch_save({"key": key, "shard": [shard.view, shard.start, shard.stop], "features": feats}, target)
    return target


def _dtype(key: dict) -> torch.dtype:
    return getattr(torch, key["dtype"].removeprefix("torch."))


def cached_features(cfg: Config, data: FrameData, backbone: Any, cache_dir: str | Path, *, device: torch.device | str = "cpu", progress: bool = True,
                    tokens: bool = False, run_shards: Callable[[list[Shard], Path, dict], None] | None = None,
                    parts: int = 1) -> torch.Tensor:
    """Load the features for ``data`` from ``cache_dir`` if the stored key matches, else extract and store.

    ``tokens``: cache the token sequences (for models that attend to tokens) instead of pooled embeddings; the
    memory they need is said before extracting, and a cache above ``features.max_gb`` is refused.

    ``run_shards(shards, path, key)``: extract elsewhere (e.g. Ray tasks, :func:`write_shard` each) the shards
    that :func:`plan_shards` cuts for ``parts`` workers; they are then put together here, with the values one
    process would have extracted. Shards finished by an interrupted run are not extracted again.
    """
    path, key = cache_path(cfg, data, backbone, cache_dir, device=device, tokens=tokens, warn=True)
    dtype = _dtype(key)
    if path.is_file():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored.get("key") == key and stored["features"].shape[1] == len(data):
            log.info("features from cache %s", path)
            return stored["features"]
        log.warning("feature cache %s does not match this configuration; extracting again", path)
    need = feature_bytes(backbone, data, key["views"], tokens) / 2**30
    log.info("feature cache: %.2f GB (%s, %d view(s))", need, "tokens" if tokens else "embeddings", key["views"])
    if need > cfg.features.max_gb:
        raise UnmaskError(f"the feature cache would need {need:.1f} GB ({'token sequences' if tokens else 'embeddings'} "
                          f"of {len(data)} clips x {key['views']} view(s)), above features.max_gb="
                          f"{cfg.features.max_gb:g}; lower features.views, raise features.max_gb, or train on images "
                          f"(features.cache=never)")
    path.parent.mkdir(parents=True, exist_ok=True)
    shards = plan_shards(len(data), key["views"], clips_per_batch(data.images, cfg.features.batch_size), parts)
    if run_shards is not None and len(shards) > 1:
        feats = _gather_shards(shards, path, key, run_shards, len(data))
    else:
        mean, std = normalization(cfg.augment, backbone.data_config)
        feats = extract(backbone, data.images, Preprocess(mean, std, build_augment(cfg.augment)), views=key["views"],
                        seed=cfg.runtime.seed, batch_size=cfg.features.batch_size, dtype=dtype, device=device,
                        progress=progress, tokens=tokens)
    atomic_torch_save({"key": key, "features": feats, "dtype": str(dtype)}, path)  # a kill leaves no half cache
    for shard in shards:
        shard_file(path, shard).unlink(missing_ok=True)
    return feats


def _gather_shards(shards: list[Shard], path: Path, key: dict, run_shards, n: int) -> torch.Tensor:
    def finished(shard: Shard) -> torch.Tensor | None:
        f = shard_file(path, shard)
        if not f.is_file():
            return None
        stored = torch.load(f, map_location="cpu", weights_only=True)
        return stored["features"] if stored.get("key") == key else None

    todo = [s for s in shards if finished(s) is None]
    log.info("feature cache in %d shard(s), %d to extract", len(shards), len(todo))
    if todo:
        run_shards(todo, path, key)
    out = None
    for shard in shards:
        part = finished(shard)
        if part is None:
            raise UnmaskError(f"feature shard {shard_file(path, shard)} is missing after its task finished")
        if out is None:
            out = torch.empty(key["views"], n, *part.shape[1:])
        out[shard.view, shard.start:shard.stop] = part
    return out

