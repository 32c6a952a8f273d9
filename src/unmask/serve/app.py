"""The HTTP side: one page, a small JSON API, and nothing else.

Routes (all fixed; no route maps a URL to a path on the server):

=====================================  ==============================================================
``GET /``, ``/app.js``, ``/style.css``  the page (package files read once at start)
``GET /api/info``                       the model's tasks, the limits, the example names
``POST /api/upload?name=FILE``          the file as the raw request body -> ``{"id": ...}`` (202)
``POST /api/examples/{name}``           analyse a shipped example (a name from ``/api/info``)
``GET /api/jobs/{id}``                  state, progress, and the result or the error message
``GET /api/jobs/{id}/{media}``          the annotated image/video or the timeline the server made
=====================================  ==============================================================

The body is read as a stream and counted: past ``Limits.max_upload_mb`` the upload stops with 413 (a larger
``Content-Length`` is refused before reading). Errors answer ``{"error": message}`` with a 4xx status.
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request) at run time
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from unmask.errors import UnmaskError
from unmask.serve.analysis import Limits, accepted_extensions
from unmask.serve.jobs import Busy, JobQueue
from unmask.serve.trust_view import trust_info

if TYPE_CHECKING:
    from fastapi import FastAPI

    from unmask.predict import Predictor

PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/app.js": ("app.js", "text/javascript; charset=utf-8"),
              "/style.css": ("style.css", "text/css; charset=utf-8")}


def examples() -> dict[str, Path]:
    """The synthetic example inputs shipped in the package: file name -> path."""
    root = resources.files("unmask.serve") / "examples"
    return {p.name: Path(str(p)) for p in sorted(root.iterdir(), key=lambda p: p.name)
            if p.name.lower().endswith(accepted_extensions())}


def safe_name(name: str) -> str:
    """A file name for display and for its extension: the last path part, printable, at most 100 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[-100:] or "upload"


def create_app(predictor: "Predictor", limits: Limits = Limits(), model_name: str = "model") -> "FastAPI":
    """The FastAPI app around one :class:`~unmask.predict.Predictor` (used from one worker thread)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    queue = JobQueue(predictor, limits)
    page = {route: (resources.files("unmask.serve").joinpath("page", f).read_bytes(), t)  # type: ignore[call-arg]
            for route, (f, t) in PAGE_FILES.items()}
    shipped = examples()

    @asynccontextmanager
    async def lifespan(app):
        yield
        queue.close()  # deletes the scratch folder, with any upload still there

    # no /docs, /redoc or /openapi.json: the page is the interface
    app = FastAPI(title="unmask", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.queue = queue

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def static(body: bytes, media_type: str):
        return lambda: Response(body, media_type=media_type)

    for route, (body, media_type) in page.items():
        app.add_api_route(route, static(body, media_type), methods=["GET"], include_in_schema=False)

    @app.get("/api/info")
    def info():
        return {"model": model_name, "detector": predictor.detector_note,
                "tasks": [{"name": t.name, "title": t.title, "kind": t.kind, "labels": list(t.labels)}
                          for t in predictor.tasks],
                "limits": {"max_upload_bytes": limits.max_upload_bytes, "max_upload_mb": limits.max_upload_mb,
                           "max_video_s": limits.max_video_s, "max_frames": limits.max_frames},
                "accept": list(accepted_extensions()), "examples": list(shipped),
                **trust_info(predictor)}  # what the model and each peer were trained on, calibration

    @app.post("/api/upload", status_code=202)
    async def upload(request: Request, name: str = ""):
        name = safe_name(name)
        if not name.lower().endswith(accepted_extensions()):
            return error(415, f"{name}: not an image or video (accepted: {', '.join(accepted_extensions())})")
        too_big = f"{name} is larger than {limits.max_upload_mb:g} MB, the largest upload this server takes"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_upload_bytes:
            return error(413, too_big)
        try:
            job = queue.new_job(name)
        except Busy as e:
            return error(429, str(e))
        size = 0
        with open(queue.upload_path(job), "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_upload_bytes:
                    break
                f.write(chunk)
        if size > limits.max_upload_bytes or size == 0:
            message = too_big if size else f"{name} is empty"
            queue.cancel(job, message)
            return error(413 if size else 400, message)
        queue.start(job)
        return {"id": job.id}

    @app.post("/api/examples/{example}", status_code=202)
    def run_example(example: str):
        if example not in shipped:
            return error(404, f"unknown example {example!r}; examples: {', '.join(shipped)}")
        try:
            job = queue.new_job(example)
        except Busy as e:
            return error(429, str(e))
        queue.upload_path(job).write_bytes(shipped[example].read_bytes())
        queue.start(job)
        return {"id": job.id}

    @app.get("/api/jobs/{job_id}")
    def job_state(job_id: str):
        job = queue.jobs.get(job_id)
        if job is None:
            return error(404, "unknown or expired job; upload the file again")
        return job.view(queue.ahead(job))

    @app.get("/api/jobs/{job_id}/{media}")
    def job_media(job_id: str, media: str):
        job = queue.jobs.get(job_id)
        if job is None or job.analysis is None or media not in job.analysis.media:
            return error(404, "no such result")
        body, media_type = job.analysis.media[media]
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})

    return app


def serve(predictor: "Predictor", host: str, port: int, limits: Limits, model_name: str) -> None:
    """Run the app with uvicorn until interrupted. ``limit_concurrency`` caps open connections (503 past it)."""
    import uvicorn

    if not 0 < port < 65536:
        raise UnmaskError(f"--port must be between 1 and 65535 (got {port})")
    app = create_app(predictor, limits, model_name)
    uvicorn.run(app, host=host, port=port, log_level="warning", limit_concurrency=64,
                timeout_graceful_shutdown=5)
