"""One ``weights`` argument for every backbone: a local file, a library tag, or ``None``.

* **Local file** (``str`` or ``Path`` to an existing file): never touches the network. Formats accepted:

  - OpenAI CLIP ``.pt`` files, either the TorchScript archive OpenAI ships (read with ``torch.jit.load``) or a
    state dict in OpenAI's key layout (its ``input_resolution`` / ``context_length`` / ``vocab_size`` entries
    are dropped, partially-fp16 tensors are cast on load);
  - open_clip checkpoints: ``{"state_dict": ...}`` (optionally with a DDP ``module.`` prefix) or a plain
    state dict, ``.pt``/``.pth``/``.bin`` or ``.safetensors``;
  - timm checkpoints: ``.safetensors`` or ``.pth``/``.bin`` state dicts (``{"state_dict"|"model": ...}``
    wrappers unwrapped). The ImageNet classifier (``head.*`` for ViT, ``fc.*`` for ResNet) is removed by
    name because our backbones are built with ``num_classes=0``.

  Pickled files are read with ``torch.load(weights_only=True)``. Loads are strict: missing, unexpected or
  wrongly-shaped keys raise :class:`~unmask.errors.UnmaskError` listing them.
* **Library tag** (online only): ``openai``, ``laion2b_s34b_b88k``, ... for CLIP (open_clip's pretrained
  table); ``timm`` (timm's default tag) or a timm tag such as ``augreg_in21k_ft_in1k``. Offline
  (``HF_HUB_OFFLINE=1``) or when the download fails, one clear UnmaskError names the argument to pass.
* **None**: random initialisation, announced with a logging warning.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unmask.errors import UnmaskError

logger = logging.getLogger("unmask")

#: Suffixes that make a string a file path even when the file does not exist (so a typo is "not found",
#: never silently taken for a library tag).
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
#: Metadata entries of OpenAI's CLIP state dicts that are not parameters.
OPENAI_META_KEYS = ("input_resolution", "context_length", "vocab_size")
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class WeightsSpec:
    kind: str  # "none" | "file" | "tag"
    value: str | None = None

    @property
    def path(self) -> Path:
        return Path(str(self.value))


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``UNMASK_OFFLINE``) asks us not to use the network."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "UNMASK_OFFLINE"))


def parse_weights(weights: str | os.PathLike | None) -> WeightsSpec:
    """Classify a ``weights`` argument; a path-like value that does not exist is an error, not a tag."""
    if weights is None:
        return WeightsSpec("none")
    text = os.fspath(weights)
    path = Path(text).expanduser()
    if path.is_file():
        return WeightsSpec("file", str(path))
    looks_like_path = isinstance(weights, os.PathLike) or os.sep in text or "/" in text
    if looks_like_path or path.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise UnmaskError(f"weights file not found: {path}")
    return WeightsSpec("tag", text)


_restoring = contextvars.ContextVar("unmask_restoring_checkpoint", default=False)


@contextlib.contextmanager
def restoring_checkpoint() -> Iterator[None]:
    """Within this block weights=None is not announced: the caller loads trained weights right after."""
    token = _restoring.set(True)
    try:
        yield
    finally:
        _restoring.reset(token)


def is_restoring() -> bool:
    """True inside :func:`restoring_checkpoint`."""
    return _restoring.get()


def announce_random_init(backbone: str) -> None:
    if _restoring.get():
        return
    logger.warning("backbone %s: random initialisation (weights=None); pass weights=<file or tag> "
                   "for pretrained features", backbone)


def offline_error(tag: str, backbone: str, file_hint: str, reason: str = "offline") -> UnmaskError:
    return UnmaskError(f"pretrained weights {tag!r} for {backbone} cannot be downloaded ({reason}); "
                       f"pass a local file: model.weights=/path/to/{file_hint}")


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(name.endswith("/constants.pkl") or name == "constants.pkl" for name in zf.namelist())


def torch_load_safe(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` with one clear UnmaskError instead of torch's messages.

    Torch refuses a pickle holding anything but tensors, numbers, strings and containers with several lines of
    advice to turn the check off; that advice is wrong for a file of unknown origin (unpickling runs code), so
    the message says what the file is instead. A file cut short fails with one of several low-level errors
    (EOFError, "failed finding central directory", OSError Errno 22 from a seek past the end).
    """
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UnmaskError(f"{path} is not a safe {what}: it holds Python objects besides tensors, numbers and "
                          f"strings, which unmask does not unpickle (loading them could run code)") from None
    except (EOFError, RuntimeError, OSError, KeyError, ValueError) as e:
        size = path.stat().st_size if path.is_file() else 0
        raise UnmaskError(f"{path} ({size} bytes) is truncated or corrupt, not a readable {what} "
                          f"({type(e).__name__})") from None


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """Read a checkpoint file into a flat ``{key: tensor}`` dict; also return the container format.

    Format is ``"torchscript"`` (OpenAI's CLIP archives), ``"safetensors"`` or ``"pickle"``.
    """
    path = Path(path)
    if not path.is_file():
        raise UnmaskError(f"weights file not found: {path}")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path), device="cpu")), "safetensors"
    if _is_torchscript(path):
        with warnings.catch_warnings():  # torch.jit is deprecated, but it is how OpenAI ships CLIP
            warnings.simplefilter("ignore", FutureWarning)
            archive = torch.jit.load(str(path), map_location="cpu")
        return dict(archive.state_dict()), "torchscript"
    obj: Any = torch_load_safe(path, "weights file")
    for wrapper_key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper_key), dict):
            obj = obj[wrapper_key]
            break
    if not isinstance(obj, dict) or not obj:
        raise UnmaskError(f"weights file {path} holds no state dict (got {type(obj).__name__})")
    if all(k.startswith("module.") for k in obj):  # saved from DistributedDataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    not_tensors = sorted(k for k, v in obj.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise UnmaskError(f"weights file {path} has non-tensor entries", problems=not_tensors[:20])
    return obj, "pickle"


def read_clip_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], bool]:
    """Read an OpenAI or open_clip CLIP checkpoint; return ``(state_dict, is_openai_format)``.

    OpenAI format (TorchScript archive, or a state dict carrying OpenAI's metadata entries) means the model was
    trained with QuickGELU; the metadata entries are removed here.
    """
    state_dict, container = read_checkpoint(path)
    is_openai = container == "torchscript" or any(k in state_dict for k in OPENAI_META_KEYS)
    for key in OPENAI_META_KEYS:
        state_dict.pop(key, None)
    return state_dict, is_openai


def drop_keys(state_dict: dict[str, torch.Tensor], names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Remove exactly the listed keys (e.g. a classifier deliberately not built)."""
    return {k: v for k, v in state_dict.items() if k not in names}


def load_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], *, what: str) -> None:
    """Load ``state_dict`` into ``module``; any missing, unexpected or mis-shaped key is an UnmaskError."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if state_dict[k].shape != expected[k].shape
    )
    problems = ([f"missing: {k}" for k in missing] + [f"unexpected: {k}" for k in unexpected]
                + [f"wrong shape: {k}" for k in wrong_shape])
    if problems:
        shown = "; ".join(problems[:8]) + ("; ..." if len(problems) > 8 else "")
        raise UnmaskError(f"weights {what} do not match the model ({len(missing)} missing, {len(unexpected)} "
                          f"unexpected, {len(wrong_shape)} wrong shape): {shown}", problems=problems)
    with torch.no_grad():
        module.load_state_dict(state_dict, strict=True)
    logger.info("loaded %d tensors from %s", len(state_dict), what)


def download_open_clip(arch: str, tag: str, backbone: str, file_hint: str) -> Path:
    """Download open_clip's checkpoint for ``(arch, tag)``; UnmaskError when offline or unknown."""
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag not in tags:
        raise UnmaskError(f"unknown pretrained tag {tag!r} for {backbone}; known tags: {', '.join(tags)} "
                          f"(or pass a local file)")
    if is_offline():
        raise offline_error(tag, backbone, file_hint)
    try:
        target = open_clip.pretrained.download_pretrained(open_clip.pretrained.get_pretrained_cfg(arch, tag))
    except Exception as e:  # any network/hub failure: one clear message, cause chained
        raise offline_error(tag, backbone, file_hint, reason=f"download failed: {type(e).__name__}") from e
    return Path(target)


def timm_pretrained_model(arch: str, tag: str, backbone: str, file_hint: str, **kwargs: Any) -> nn.Module:
    """Create timm's ``arch`` with hub weights for ``tag`` (``"timm"`` = timm's default tag), head removed.

    timm's own loader applies its checkpoint filters and loads strictly (classifier dropped for
    ``num_classes=0``).
    """
    import timm

    known = ["timm"] + [n.split(".", 1)[1] for n in timm.list_pretrained(f"{arch}.*")]
    if tag not in known:
        raise UnmaskError(f"unknown pretrained tag {tag!r} for {backbone}; known tags: {', '.join(known)} "
                          f"(or pass a local file)")
    if is_offline():
        raise offline_error(tag, backbone, file_hint)
    name = arch if tag == "timm" else f"{arch}.{tag}"
    try:
        return timm.create_model(name, pretrained=True, num_classes=0, **kwargs)
    except Exception as e:  # any network/hub failure: one clear message, cause chained
        raise offline_error(tag, backbone, file_hint, reason=f"download failed: {type(e).__name__}") from e
