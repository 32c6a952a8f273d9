"""Onset-to-apex optical flow: known shifts are recovered, alignment removes head motion, prepare caches it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from micro_fixtures import write_casme2
from unmask.cli import main
from unmask.data.datasets import load_frames
from unmask.data.flow import decode_flow, encode_flow, onset_apex_flow, optical_strain
from unmask.data.prepare import PreparedSet
from unmask.errors import UnmaskError


def _texture(seed=0, n=140):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((n, n)) * 255).astype(np.uint8), (0, 0), 2)


def _shifted(img, dx, dy):
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[::-1])


@pytest.mark.parametrize("method", ["dis", "farneback", "tvl1"])
@pytest.mark.parametrize("dx,dy", [(2.0, 1.0), (-1.5, 0.5)])
def test_flow_of_a_known_shift_recovers_the_shift(method, dx, dy):
    base = _texture()
    a, b = base[10:122, 10:122], _shifted(base, dx, dy)[10:122, 10:122]
    field, info = onset_apex_flow(np.dstack([a] * 3), np.dstack([b] * 3), method, align="none")
    inner = field[20:-20, 20:-20]
    assert np.median(inner[..., 0]) == pytest.approx(dx, abs=0.1)
    assert np.median(inner[..., 1]) == pytest.approx(dy, abs=0.1)
    assert np.median(inner[..., 2]) < 0.05  # a rigid shift has no strain
    # with ECC alignment the shift (head motion) is registered away before the flow
    field, info = onset_apex_flow(np.dstack([a] * 3), np.dstack([b] * 3), method, align="ecc")
    assert info["ecc"] == "ok" and info["dx"] == pytest.approx(dx, abs=0.1)
    assert np.median(np.abs(field[20:-20, 20:-20, :2])) < 0.1


def test_strain_of_a_stretch_and_the_cache_encoding():
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    stretch = np.dstack([0.05 * xs, np.zeros_like(xs)])  # du/dx = 0.05
    assert optical_strain(stretch)[5:-5, 5:-5] == pytest.approx(0.05, abs=1e-5)
    field = np.dstack([np.full((4, 4), 1.25), np.full((4, 4), -0.5), np.full((4, 4), 0.1)]).astype(np.float32)
    assert decode_flow(encode_flow(field)) == pytest.approx(field, abs=1 / 32)


def test_tvl1_without_opencv_contrib_names_the_package(monkeypatch):
    assert hasattr(cv2, "optflow"), "unmask depends on OpenCV's contrib build (TV-L1)"
    monkeypatch.delattr(cv2, "optflow")  # as under a plain opencv-python-headless
    with pytest.raises(UnmaskError, match="opencv-contrib-python-headless"):
        onset_apex_flow(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), "tvl1")


def test_prepare_caches_flow_and_the_method_is_part_of_the_cache_key(tmp_path, capsys):
    sheet, frames = write_casme2(tmp_path)
    manifest = tmp_path / "casme2.csv"
    assert main(["import", "casme2", str(sheet), "--frames", str(frames), "--out", str(manifest)]) == 0
    out = tmp_path / "prep"
    args = ["prepare", str(manifest), "--out", str(out), "--detector", "none", "--size", "32", "--frames", "rise:4",
            "--flow", "dis", "--no-progress"]
    assert main(args) == 0
    ps = PreparedSet(out)
    assert ps.config["flow"] == "dis" and ps.config["flow_align"] == "ecc"
    meta = json.loads((out / "clips" / "sub01_EP02_01f" / "meta.json").read_text())
    assert meta["flow"]["method"] == "dis" and meta["frames"]["clip"] == [0, 1, 3, 4]  # onset..apex (0..4)
    # the fixture's square moves right 1 px a frame: onset -> apex (4 frames) is about 4 px at 48 px, x 32/48
    # at 32 px; ECC would register it away, so the flow test above covers alignment, this one the cache
    data = load_frames(ps, "clip_flow", size=32)
    assert tuple(data.images.shape) == (5, 5, 3, 32, 32)
    flow = decode_flow(data.images[0, -1].permute(1, 2, 0).numpy())
    assert np.allclose(flow, decode_flow(ps.load_flow("sub01_EP02_01f")))
    # another method into the same folder is refused rather than mixing caches
    assert main([*args[:-2], "farneback", "--no-progress"]) == 2
    assert "flow: 'dis' there, 'farneback' now" in capsys.readouterr().err
    # a set without flow cannot serve the clip_flow paradigm, and says how to fix it
    plain = tmp_path / "plain"
    assert main(["prepare", str(manifest), "--out", str(plain), "--detector", "none", "--size", "32",
                 "--frames", "rise:4", "--no-progress"]) == 0
    with pytest.raises(UnmaskError, match="prepared without flow: prepare again with --flow"):
        load_frames(PreparedSet(plain), "clip_flow", size=32)
