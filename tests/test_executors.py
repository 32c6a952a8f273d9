"""The executor choice without Ray: local stays the default and imports no Ray, a Ray option without Ray is
one clear message, a crashed local unit loses only itself, and the executor is not part of a run's identity."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import subprocess
import sys
from pathlib import Path

import pytest

from unmask.config import load_config
from unmask.errors import UnmaskError
from unmask.executors import LocalExecutor, Unit, make_executor, raise_failures


def _write(path: str, text: str) -> None:
    Path(path).write_text(text)


def _crash(path: str) -> None:
    os._exit(3)  # a worker that dies without a Python exception (as a killed one does)


def test_nothing_imports_ray_unless_it_is_chosen():
    code = ("import sys; import unmask.cli, unmask.executors, unmask.train.run, unmask.experiments.runner, "
            "unmask.train.tune; unmask.cli.build_parser(); "
            "from unmask.config import load_config; from unmask.executors import make_executor; "
            "make_executor(load_config().runtime, 2); assert 'ray' not in sys.modules, 'ray imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 0, r.stderr


def test_ray_option_without_ray_is_one_clear_message(monkeypatch, tmp_path, capsys):
    from unmask.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as where it is not installed
    with pytest.raises(UnmaskError, match=r'pip install "unmask\[ray\]"'):
        make_executor(load_config(None, ["runtime.executor=ray"]).runtime)
    rc = main(["train", "--config", "dsid_synth", "data.prepared=/nonexistent", "--out", str(tmp_path / "r"),
               "--executor", "ray", "--quiet"])
    err = capsys.readouterr().err
    assert rc != 0 and 'pip install "unmask[ray]"' in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_bad_executor_settings_name_the_key():
    with pytest.raises(UnmaskError, match="runtime.executor"):
        load_config(None, ["runtime.executor=slurm"])
    with pytest.raises(UnmaskError, match="runtime.ray_address"):
        load_config(None, ["runtime.ray_address=10.0.0.1:6379"])
    with pytest.raises(UnmaskError, match="runtime.ray_cpus"):
        load_config(None, ["runtime.ray_cpus=0"])


def test_a_crashed_local_unit_loses_only_itself(tmp_path):
    units = [Unit("a", _write, (str(tmp_path / "a"), "A")), Unit("crash", _crash, (str(tmp_path / "c"),)),
             Unit("b", _write, (str(tmp_path / "b"), "B"))]
    failures = LocalExecutor(2).run(units, progress=False)
    assert "crash" in {f.unit.name for f in failures}
    # a dead process breaks the pool: the units it had not finished are reported too, never silently lost
    done = {p.name for p in tmp_path.iterdir()}
    assert done | {f.unit.name for f in failures} == {"a", "b", "crash"} and "c" not in done
    with pytest.raises(UnmaskError, match=r"of 3 units failed") as e:
        raise_failures(failures, 3, "units")
    assert any(p.startswith("crash:") for p in e.value.problems)


def test_the_executor_is_not_part_of_a_runs_identity():
    from unmask.experiments.runner import run_hash

    local = load_config("dsid_synth")
    ray = load_config("dsid_synth", ["runtime.executor=ray", "runtime.ray_cpus=4", "runtime.ray_gpus=0.5",
                                     "runtime.ray_address=ray://head:10001", "runtime.ray_retries=3"])
    assert run_hash(local) == run_hash(ray)
    assert run_hash(local) != run_hash(load_config("dsid_synth", ["optim.lr=0.01"]))
