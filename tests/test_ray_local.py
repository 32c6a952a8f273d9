"""`--executor ray` on a machine where no Ray cluster runs (issue 21): ``runtime.ray_address=auto`` falls back to
a local instance, as ``ray.init()`` does, and says so. Its own file: test_ray.py's module Ray instance has ended
by the time this runs, so the subprocess finds no cluster (unless one was started by hand on this machine)."""

import os
import sys
from pathlib import Path

import pytest

from unmask.errors import UnmaskError

pytest.importorskip("ray", reason='the ray extra: pip install "unmask[ray]"')
from test_ray import TINY, _fold_metrics, _train  # noqa: E402


def test_no_cluster_on_this_node_starts_a_local_instance_and_says_so(tiny_synth, tmp_path):
    """`--executor ray` where no `ray start` ran (issue 21): auto falls back to a local Ray instance, as ray.init()
    does, and says so; the run is the local executor's. A fresh process, so no Ray of this test session is seen."""
    import subprocess

    import unmask

    _, prepared = tiny_synth
    src = str(Path(unmask.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(PYTHONPATH=src, HF_HUB_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1",
               RAY_AUTH_MODE="disabled", RAY_DISABLE_DOCKER_CPU_WARNING="1")
    code = "import sys; from unmask.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["train", "--config", "dsid_synth", f"data.prepared={prepared}", *TINY, "--folds", "s01", "--quiet",
            "--executor", "ray", "runtime.ray_address=auto", "--out", str(tmp_path / "auto")]
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "starting a local Ray instance" in done.stderr
    assert (tmp_path / "auto" / "folds" / "s01" / "metrics.json").is_file()
    assert _train(prepared, tmp_path / "local", "--folds", "s01") == 0
    assert _fold_metrics(tmp_path / "auto") == _fold_metrics(tmp_path / "local")


def test_ray_address_is_checked():
    from unmask.config import load_config

    assert load_config("dsid_synth", ["runtime.ray_address=local"]).runtime.ray_address == "local"
    with pytest.raises(UnmaskError, match="auto, local or ray://"):
        load_config("dsid_synth", ["runtime.ray_address=somewhere"])
