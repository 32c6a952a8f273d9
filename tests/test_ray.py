"""The Ray executor and ``unmask tune`` on a local 2-CPU Ray started inside the tests (loopback, no dashboard).

Contracts: a Ray run gives the same per-fold metrics as a local run; a run resumes on either executor without
recomputing finished folds; a worker killed mid-fold loses only that fold (reported, then retried on resume,
or retried by Ray); the search scores validation subjects only and the chosen setting runs once.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from unmask.cli import main
from unmask.errors import UnmaskError

ray = pytest.importorskip("ray", reason='the ray extra: pip install "unmask[ray]"')

TINY = ["model.backbone=tiny_resnet", "model.weights=null", "model.backbone_args.img_size=32",
        "model.args.dsid.adapter_dim=32", "model.args.dsid.branch_dim=16", "optim.epochs=2", "optim.patience=2",
        "optim.batch_size=16", "augment.rotation=0", "features.views=2", "features.precision=fp32"]


@pytest.fixture(scope="module")
def local_ray():
    import unmask

    for key, value in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1", "RAY_AUTH_MODE": "disabled",
                       "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}.items():
        os.environ.setdefault(key, value)
    src = str(Path(unmask.__file__).resolve().parents[1])  # workers import this checkout's unmask
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": src, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def _train(prepared, out, *extra):
    return main(["train", "--config", "dsid_synth", f"data.prepared={prepared}", *TINY, *extra, "--out", str(out),
                 "--quiet"])


def _fold_metrics(run: Path) -> dict:
    """Every fold's metrics.json (subjects, best epoch, validation score, test scores per task)."""
    return {m.parent.name: json.loads(m.read_text()) for m in sorted((run / "folds").glob("*/metrics.json"))}


def _mtimes(run: Path) -> dict:
    return {p.parent.name: p.stat().st_mtime_ns for p in (run / "folds").glob("*/metrics.json")}


def test_ray_run_equals_local_run_and_resumes_across_executors(local_ray, tiny_synth, tmp_path):
    _, prepared = tiny_synth
    assert _train(prepared, tmp_path / "local") == 0
    # a Ray run started with one fold, then resumed on the other executor: s01 is never recomputed
    assert _train(prepared, tmp_path / "ray", "--folds", "s01", "--executor", "ray") == 0
    first = _mtimes(tmp_path / "ray")
    assert list(first) == ["s01"]
    assert _train(prepared, tmp_path / "ray", "--resume") == 0  # local executor, all folds
    assert _mtimes(tmp_path / "ray")["s01"] == first["s01"]
    local, distributed = _fold_metrics(tmp_path / "local"), _fold_metrics(tmp_path / "ray")
    assert sorted(local) == ["s01", "s02", "s03"] and local == distributed
    assert json.loads((tmp_path / "ray" / "summary.json").read_text())["tasks"] == \
        json.loads((tmp_path / "local" / "summary.json").read_text())["tasks"]
    # the whole run on Ray from scratch, its feature cache extracted in shards by Ray tasks: same features, same
    # numbers again
    assert _train(prepared, tmp_path / "ray2", "--executor", "ray", f"features.cache_dir={tmp_path / 'shards'}") == 0
    assert _fold_metrics(tmp_path / "ray2") == local
    import torch

    (sharded,) = (tmp_path / "shards").glob("*.pt")  # the shard files are gone, the cache is one file
    whole = Path(prepared) / "features" / sharded.name  # the local run's cache (same key, same name)
    assert torch.equal(torch.load(sharded, weights_only=True)["features"], torch.load(whole, weights_only=True)["features"])
    import yaml

    assert yaml.safe_load((tmp_path / "ray2" / "config.yaml").read_text())["runtime"]["executor"] == "ray"


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux /proc): the Ray this test started, and its workers."""
    children = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _kill_task_worker(title: str, deadline_s: float = 60) -> threading.Thread:
    """Kill (SIGKILL) the Ray worker whose process title starts with ``ray::<title>`` as soon as it runs."""
    killed = []

    def watch():
        end = time.time() + deadline_s
        while time.time() < end and not killed:
            for pid in _descendants(os.getpid()):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if cmd.startswith(f"ray::{title}"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.killed = killed
    t.start()
    return t


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker through /proc")
def test_killed_worker_loses_only_its_fold_then_retries(local_ray, tiny_synth, tmp_path):
    from unmask.config import load_config
    from unmask.train.run import train_run

    _, prepared = tiny_synth
    # cached features on 2 Ray CPUs: two stacks, "folds s01,s03" and "folds s02"
    cfg = load_config("dsid_synth", [f"data.prepared={prepared}", *TINY, "runtime.executor=ray",
                                     "runtime.ray_retries=0"])
    watcher = _kill_task_worker("folds s02")
    with pytest.raises(UnmaskError) as e:
        train_run(cfg, tmp_path / "run", progress=False)
    watcher.join()
    assert watcher.killed, "the fold's worker was never seen running"
    assert "1 of 2 fold group(s) failed" in str(e.value) and "folds s02" in e.value.problems[0]
    kept = _mtimes(tmp_path / "run")
    assert sorted(kept) == ["s01", "s03"]  # every other fold's results are kept
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["missing_folds"] == ["s02"]
    # Ray retries the killed task when allowed; resuming trains only the missing fold
    cfg.runtime.ray_retries = 1
    watcher = _kill_task_worker("folds s02")
    train_run(cfg, tmp_path / "run", resume=True, progress=False)
    watcher.join()
    assert watcher.killed
    after = _mtimes(tmp_path / "run")
    assert sorted(after) == ["s01", "s02", "s03"] and all(after[f] == kept[f] for f in kept)
    assert not json.loads((tmp_path / "run" / "summary.json").read_text()).get("missing_folds")


def test_tune_scores_validation_subjects_and_runs_the_choice_once(local_ray, tiny_synth, tmp_path):
    _, prepared = tiny_synth
    space = tmp_path / "space.yaml"
    space.write_text("loss.args.dsid.alpha: [0.1, 0.9]\noptim.lr: {loguniform: [1.0e-4, 1.0e-2]}\n")
    assert main(["tune", "--config", "dsid_synth", f"data.prepared={prepared}", *TINY, "--space", str(space),
                 "--trials", "2", "--out", str(tmp_path / "tune"), "--quiet"]) == 0
    record = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert len(record["trials"]) == 2 and record["budget"]["trials"] == 2 and record["budget"]["scheduler"] == "ASHA"
    best = max(record["trials"], key=lambda r: r["val_score"])
    assert record["chosen"] == best["params"] and record["chosen"]["loss.args.dsid.alpha"] in (0.1, 0.9)
    assert 1e-4 <= record["chosen"]["optim.lr"] <= 1e-2
    # the objective is the validation accuracy the trials' fold logs hold (never a test number); a trial ASHA
    # stopped early leaves no fold logs, one that ran every epoch does
    import pandas as pd

    assert sorted(d.name for d in (tmp_path / "tune" / "trials").iterdir()) == sorted(r["trial"] for r in record["trials"])
    finished = 0
    for r in record["trials"]:
        folds = sorted((tmp_path / "tune" / "trials" / r["trial"] / "folds").iterdir())
        if all((f / "log.csv").is_file() for f in folds):
            logs = [pd.read_csv(f / "log.csv") for f in folds]
            assert r["val_score"] == pytest.approx(sum(lg.val_true_acc.iloc[-1] for lg in logs) / len(logs))
            finished += 1
    assert finished >= 1
    # the chosen setting trained once under the protocol, with the chosen values in its config
    final = tmp_path / "tune" / "final"
    assert sorted(_mtimes(final)) == ["s01", "s02", "s03"]
    import yaml

    saved = yaml.safe_load((final / "config.yaml").read_text())
    assert saved["loss"]["args"]["dsid"]["alpha"] == record["chosen"]["loss.args.dsid.alpha"]
    assert saved["optim"]["lr"] == pytest.approx(record["chosen"]["optim.lr"])
    md = (tmp_path / "tune" / "tune.md").read_text()
    assert "ASHA" in md and "loss.args.dsid.alpha" in md and "never a test subject" in md


def test_a_bad_search_space_names_the_key(tmp_path, tiny_synth):
    from unmask.config import load_config
    from unmask.train.tune import read_space

    cfg = load_config("dsid_synth", [f"data.prepared={tiny_synth[1]}", *TINY])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim.lrr: [0.1]\n")
    with pytest.raises(UnmaskError, match="optim.lrr"):
        read_space(bad, cfg)
    bad.write_text("optim.lr: {normal: [0, 1]}\n")
    with pytest.raises(UnmaskError, match="bad.yaml: optim.lr"):
        read_space(bad, cfg)

