"""Uploads waiting, running and done: one analysis at a time, a cap on how many wait, uploads deleted after.

One worker thread runs the analyses in order: the predictor's face detector keeps per-call state (YuNet's
input size) and a CPU is busy with one model pass anyway. ``Limits.max_jobs`` caps the jobs waiting or
running; past it a new upload is refused (:class:`Busy`) rather than queued without end. Each upload lives in
its own folder under the server's scratch folder and is deleted when its analysis ends, whatever the outcome;
results (JSON and the media the server made) stay in memory for the last ``keep`` jobs, reachable only by
their random id.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from unmask.errors import UnmaskError
from unmask.serve.analysis import Analysis, Limits, analyse

if TYPE_CHECKING:
    from unmask.predict import Predictor

log = logging.getLogger("unmask.serve")


class Busy(Exception):
    """Too many uploads waiting: the page asks the user to try again shortly."""


@dataclass
class Job:
    id: str
    name: str
    state: str = "queued"  # queued | running | done | error
    progress: float = 0.0
    stage: str = "waiting"
    error: str = ""
    analysis: Analysis | None = None
    workdir: Path | None = field(default=None, repr=False)

    def view(self, ahead: int = 0) -> dict:
        """What ``GET /api/jobs/{id}`` answers."""
        out = {"id": self.id, "name": self.name, "state": self.state, "progress": round(self.progress, 3),
               "stage": f"waiting ({ahead} ahead)" if self.state == "queued" and ahead else self.stage}
        if self.state == "error":
            out["error"] = self.error
        if self.state == "done":
            analysis = cast(Analysis, self.analysis)  # set when the job is done
            out["result"] = dict(analysis.data, media={k: f"/api/jobs/{self.id}/{k}" for k in analysis.media})
        return out


class JobQueue:
    def __init__(self, predictor: Predictor, limits: Limits, keep: int = 16):
        self.predictor, self.limits, self.keep = predictor, limits, keep
        self.scratch = Path(tempfile.mkdtemp(prefix="unmask-serve-"))
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unmask-serve")

    def active(self) -> int:
        return sum(j.state in ("queued", "running") for j in self.jobs.values())

    def new_job(self, name: str) -> Job:
        """Reserve a place and a private upload folder; :class:`Busy` when ``max_jobs`` are waiting/running."""
        with self._lock:
            if self.active() >= self.limits.max_jobs:
                raise Busy(f"the server is busy with {self.limits.max_jobs} uploads; try again in a moment")
            job = Job(id=secrets.token_urlsafe(12), name=name)
            job.workdir = Path(tempfile.mkdtemp(dir=self.scratch))
            job.state = "queued"
            self.jobs[job.id] = job
            self._forget_old()
            return job

    def upload_path(self, job: Job) -> Path:
        # the user's name gives only the extension (media_kind reads it); the path is the server's own
        return cast(Path, job.workdir) / ("upload" + Path(job.name).suffix.lower())

    def start(self, job: Job) -> None:
        self._pool.submit(self._run, job)

    def cancel(self, job: Job, message: str) -> None:
        """An upload that never reached the queue (refused while being received)."""
        job.state, job.error = "error", message
        self._cleanup(job)

    def ahead(self, job: Job) -> int:
        ids = [j.id for j in self.jobs.values() if j.state in ("queued", "running")]
        return ids.index(job.id) if job.id in ids else 0

    def _run(self, job: Job) -> None:
        job.state, job.stage = "running", "starting"

        def progress(fraction: float, stage: str) -> None:
            job.progress, job.stage = fraction, stage

        try:
            job.analysis = analyse(self.predictor, self.upload_path(job), job.name, self.limits, progress)
            job.state, job.progress, job.stage = "done", 1.0, "done"
        except UnmaskError as e:
            job.state, job.error = "error", self._scrub(job, str(e))
        except Exception:  # a bug, not bad input: logged with its traceback, and the server goes on serving
            log.exception("analysis of %s failed", job.name)
            job.state, job.error = "error", f"internal error while analysing {job.name} (see the server's log)"
        finally:
            self._cleanup(job)

    def _scrub(self, job: Job, message: str) -> str:
        """Messages name the user's file, never the server's folders."""
        for p in (self.upload_path(job), job.workdir, self.scratch):
            message = message.replace(str(p), job.name)
        return message

    def _cleanup(self, job: Job) -> None:
        if job.workdir is not None:
            shutil.rmtree(job.workdir, ignore_errors=True)
            job.workdir = None

    def _forget_old(self) -> None:
        finished = [k for k, j in self.jobs.items() if j.state in ("done", "error")]
        for k in finished[: max(0, len(finished) - self.keep)]:
            del self.jobs[k]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)
