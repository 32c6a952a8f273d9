"""Where independent units of work run: this machine's processes (``local``) or Ray tasks (``ray``).

Everything that fans out (the fold groups of ``unmask train``, the runs of ``unmask reproduce``, the feature
extraction before them, the trials of ``unmask tune``) hands a list of :class:`Unit` to
:meth:`Executor.run`. A unit is a module-level function and small arguments (configs as dicts, paths, fold
names): over Ray nothing else crosses the network, and a unit writes its results into the run directory on
storage every worker shares, exactly where a local run writes them. A unit must be safe to run twice (the
engine's finished folds and resume state make training so), because a killed Ray worker is retried.

``run`` returns the units that failed with their error; finished units' results are on disk either way.

Ray is imported only when the ``ray`` executor is made.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from unmask.errors import UnmaskError

INSTALL_HINT = 'pip install "unmask[ray]"'


@dataclass
class Unit:
    name: str  # shown in progress and failure messages, e.g. "fold s03" or "run dsid-...-1a2b"
    fn: Callable  # a module-level function (pickled by reference)
    args: tuple = ()
    weight: int = 1  # progress-bar steps (e.g. folds in a group)


@dataclass
class Failure:
    unit: Unit
    error: BaseException


def _call(fn: Callable[..., Any], args: tuple, threads: int) -> Any:
    import torch

    if threads:
        torch.set_num_threads(threads)  # each of N processes gets its share of the cores, not all of them
    return fn(*args)


class LocalExecutor:
    """``jobs`` = 1: units run one after the other in this process (errors propagate as they are);
    ``jobs`` > 1: a pool of forked processes (on Linux they inherit what the parent loaded before ``run``)."""

    name = "local"

    def __init__(self, jobs: int = 1, threads: int = 0):
        if jobs < 1:
            raise UnmaskError(f"--jobs must be at least 1 (got {jobs})")
        self.jobs = jobs
        # runtime.threads, where set, holds in every worker as in one process: another thread count sums floats
        # in another order, and a run's numbers must not depend on --jobs
        self.threads = threads

    @property
    def slots(self) -> int:
        return self.jobs

    def run(self, units: list[Unit], *, desc: str = "units", progress: bool = True) -> list[Failure]:
        bar = tqdm(total=sum(u.weight for u in units), desc=desc, disable=not progress or len(units) < 2)
        if self.jobs == 1 or len(units) < 2:
            for u in units:
                u.fn(*u.args)
                bar.update(u.weight)
            bar.close()
            return []
        failures = []
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.jobs)
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(min(self.jobs, len(units)), mp_context=ctx) as pool:
            futures = {pool.submit(_call, u.fn, u.args, threads): u for u in units}
            for fut in as_completed(futures):
                unit = futures[fut]
                try:
                    fut.result()
                except UnmaskError:
                    raise  # bad input: the same message a one-process run gives
                except Exception as e:  # a crashed unit; the others' results are kept
                    failures.append(Failure(unit, e))
                bar.update(unit.weight)
        bar.close()
        return failures


def _start_local_ray(ray: Any) -> None:
    """A Ray instance of this machine's CPUs and GPUs for this process, no dashboard; ends with the process."""
    try:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    except (RuntimeError, ValueError, OSError) as e:
        raise UnmaskError(f"could not start a local Ray instance: {e}") from None


@dataclass
class RayExecutor:
    """Each unit is one Ray task declaring ``cpus``/``gpus``/``memory_gb``; a task whose worker dies is retried
    ``retries`` times. Connects to ``address`` unless this process has already called ``ray.init``: ``auto``, the
    cluster ``ray start`` made on this node, or where none runs a local Ray instance on this machine, as
    ``ray.init()`` itself does (said on stderr, so a missing cluster is not mistaken for one); ``local``, a new
    local instance without looking for a cluster; ``ray://HOST:PORT``, that cluster or an error."""

    address: str = "auto"
    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float = 0.0
    retries: int = 1
    threads: int = 0  # torch threads per task; 0: the task's CPUs
    name: str = field(default="ray", init=False)

    def __post_init__(self):
        ray = import_ray()
        if ray.is_initialized():
            return
        if self.address == "local":
            _start_local_ray(ray)
            return
        try:
            ray.init(address=self.address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            if self.address != "auto":
                raise UnmaskError(f"cannot reach a Ray cluster at runtime.ray_address={self.address!r}: {e}; start "
                                  "one with `ray start --head` (see docs/cluster.md), or set runtime.ray_address="
                                  "local for a Ray instance on this machine") from None
            print("no Ray cluster runs on this node (runtime.ray_address=auto): starting a local Ray instance on "
                  "this machine for this run; `ray start --head` makes a cluster, runtime.ray_address=local skips "
                  "the search", file=sys.stderr)
            _start_local_ray(ray)

    @property
    def slots(self) -> int:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1) // max(self.cpus, 1e-9)))

    def run(self, units: list[Unit], *, desc: str = "units", progress: bool = True) -> list[Failure]:
        import ray

        options = {"num_cpus": self.cpus, "num_gpus": self.gpus, "max_retries": self.retries,
                   "retry_exceptions": False}  # retry a lost worker, not a bug or bad input
        if self.memory_gb:
            options["memory"] = int(self.memory_gb * 2**30)
        task = ray.remote(_call)
        # the task's name is its worker's process title (ray::<name>) while it runs
        refs = {task.options(**options, name=u.name).remote(u.fn, u.args, self.threads or max(1, int(self.cpus))): u
                for u in units}
        bar = tqdm(total=sum(u.weight for u in units), desc=desc, disable=not progress)
        failures, pending = [], list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            unit = refs[done[0]]
            try:
                ray.get(done[0])
            except ray.exceptions.RayTaskError as e:
                cause = e.as_instanceof_cause()
                if isinstance(cause, UnmaskError):
                    raise UnmaskError(str(cause), cause.problems) from None
                failures.append(Failure(unit, cause))
            except ray.exceptions.RayError as e:  # the worker died after every retry
                failures.append(Failure(unit, e))
            bar.update(unit.weight)
        bar.close()
        return failures


EXECUTORS = ("local", "ray")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UnmaskError(f"the Ray executor needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def make_executor(runtime: Any, jobs: int = 1) -> LocalExecutor | RayExecutor:
    """The executor ``runtime.executor`` names (``jobs``: local processes; Ray sizes itself by the cluster)."""
    if runtime.executor == "local":
        return LocalExecutor(jobs, runtime.threads)
    if runtime.executor == "ray":
        return RayExecutor(runtime.ray_address, runtime.ray_cpus, runtime.ray_gpus, runtime.ray_memory_gb,
                           runtime.ray_retries, runtime.threads)
    raise UnmaskError(f"unknown executor {runtime.executor!r}; choose one of {', '.join(EXECUTORS)}")


def raise_failures(failures: list[Failure], total: int, what: str) -> None:
    """One message for the units that failed (their finished siblings are already on disk)."""
    if failures:
        raise UnmaskError(f"{len(failures)} of {total} {what} failed; finished ones are kept: rerun the same "
                          "command (train: with --resume) to retry the rest",
                          [f"{f.unit.name}: {type(f.error).__name__}: {str(f.error).splitlines()[0] if str(f.error) else ''}"
                           for f in failures])
