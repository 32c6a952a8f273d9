"""unmask serve over HTTP (a real uvicorn server on a loopback port): results equal unmask predict's, bad
uploads get a message and the server goes on, limits hold, uploads are deleted, no server path is readable."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="unmask serve needs the 'serve' extra (fastapi, uvicorn)")
uvicorn = pytest.importorskip("uvicorn", reason="unmask serve needs the 'serve' extra (fastapi, uvicorn)")

from unmask.cli import main  # noqa: E402
from unmask.predict import Predictor, read_results  # noqa: E402
from unmask.serve.analysis import Limits  # noqa: E402
from unmask.serve.app import create_app, examples  # noqa: E402

EXAMPLE_VIDEO = "felt_sadness_shown_happiness.mp4"


@contextlib.contextmanager
def running(app):
    """Serve ``app`` with uvicorn in a thread on a free loopback port (the socket is bound first: no race)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def call(url, data=None, headers=None):
    """``(status, parsed JSON or bytes)``; 4xx/5xx answers are returned, not raised."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, body, ctype = r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        status, body, ctype = e.code, e.read(), e.headers.get("content-type", "")
    return status, json.loads(body) if ctype.startswith("application/json") else body


def upload(base, path_or_bytes, name):
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return call(f"{base}/api/upload?name={urllib.request.quote(name)}", data)


def wait(base, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        status, state = call(f"{base}/api/jobs/{job_id}")
        assert status == 200
        if state["state"] in ("done", "error"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.1)


def analyse(base, path_or_bytes, name):
    status, body = upload(base, path_or_bytes, name)
    assert status == 202, body
    return wait(base, body["id"])


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def server(predictor):
    app = create_app(predictor, Limits(max_upload_mb=2, max_video_s=60, max_frames=20, max_jobs=2))
    with running(app) as base:
        yield base, app.state.queue


def _scratch_files(queue):
    return [p for p in queue.scratch.rglob("*") if p.is_file()]


def test_image_result_equals_unmask_predict(server, tiny_checkpoint, faces_dir, tmp_path):
    base, queue = server
    image = faces_dir / "single_face.jpg"
    state = analyse(base, image, image.name)
    assert state["state"] == "done", state
    result = state["result"]
    assert main(["predict", str(tiny_checkpoint), str(image), "--out", str(tmp_path / "p.csv")]) == 0
    expected = read_results(tmp_path / "p.csv")
    assert [t["name"] for t in result["tasks"]] == ["true", "disguised"]
    assert [t["title"] for t in result["tasks"]] == ["felt", "shown"]
    assert len(result["faces"]) == len(expected) == 1
    face, row = result["faces"][0], expected.iloc[0]
    assert face["box"] == [int(row[k]) for k in ("x", "y", "w", "h")]
    for task in result["tasks"]:
        got = face["tasks"][task["name"]]
        assert got["pred"] == row[f"{task['name']}_pred"]
        for label in task["labels"]:
            assert got["p"][label] == pytest.approx(row[f"{task['name']}_p_{label}"], rel=1e-6)
    status, jpeg = call(base + result["media"]["annotated.jpg"])
    assert status == 200 and jpeg[:2] == b"\xff\xd8"
    assert _scratch_files(queue) == []  # the upload was deleted once analysed


def test_video_apex_rows_equal_unmask_predict_and_the_video_is_sampled(server, tiny_checkpoint, tmp_path):
    base, _ = server
    video = examples()[EXAMPLE_VIDEO]
    state = analyse(base, video, video.name)
    assert state["state"] == "done", state
    result = state["result"]
    # 37 frames over the server's 20-frame budget: 1 in 2 analysed, and the page says so
    assert result["every"] == 2 and "1 frame in 2" in result["notes"][0]
    assert main(["predict", str(tiny_checkpoint), str(video), "--every", "2", "--apex-search",
                 "--out", str(tmp_path / "p.csv")]) == 0
    expected = read_results(tmp_path / "p.csv")
    apex = expected[expected.apex]
    assert [f["frame"] for f in result["faces"]] == apex.frame.tolist()
    for face, (_, row) in zip(result["faces"], apex.iterrows()):
        for label, p in face["tasks"]["disguised"]["p"].items():
            assert p == pytest.approx(row[f"disguised_p_{label}"], rel=1e-6)
    timeline = result["timeline"]
    frames = expected[~expected.apex & expected.face_found & (expected.track == timeline["track"])]
    assert timeline["frame"] == frames.frame.tolist() == list(range(0, 37, 2))
    np.testing.assert_allclose(timeline["p"]["true"]["anger"], frames.true_p_anger, rtol=1e-6)
    assert timeline["apex_s"] == pytest.approx(result["faces"][0]["time_s"])
    for media, magic in (("timeline.png", b"\x89PNG"), ("annotated.mp4", b"ftyp")):
        status, body = call(base + result["media"][media])
        assert status == 200 and magic in body[:12]


def test_bad_uploads_get_a_message_and_the_server_goes_on(server, faces_dir):
    base, queue = server
    corrupt = analyse(base, b"\x00 this is not a jpeg " * 50, "holiday.jpg")
    assert corrupt["state"] == "error" and corrupt["error"] == "cannot read image holiday.jpg (corrupt or not an image)"
    broken_video = analyse(base, b"\x00\x00\x00\x18ftypmp42" + bytes(3000), "clip.mp4")
    assert broken_video["state"] == "error" and "clip.mp4" in broken_video["error"]
    no_face = analyse(base, faces_dir / "free-mountain-vector-01.jpg", "free-mountain-vector-01.jpg")
    assert no_face["state"] == "error" and no_face["error"] == "no face found in free-mountain-vector-01.jpg"
    for state in (corrupt, broken_video, no_face):
        assert str(queue.scratch) not in state["error"] and "/tmp" not in state["error"]
    good = analyse(base, faces_dir / "single_face.jpg", "single_face.jpg")
    assert good["state"] == "done" and len(good["result"]["faces"]) == 1
    assert _scratch_files(queue) == []
    status, body = upload(base, b"hello", "notes.txt")
    assert status == 415 and "not an image or video" in body["error"]
    status, body = upload(base, b"", "empty.jpg")
    assert status == 400 and body["error"] == "empty.jpg is empty"


def test_oversize_uploads_are_refused_declared_or_streamed(server, faces_dir):
    base, queue = server
    # Content-Length says 3 MB (the server takes 2): the answer comes before any of the body is sent
    host, port = base.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/api/upload?name=big.jpg")
    conn.putheader("Content-Length", str(3 * 1024 * 1024))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413
    assert json.loads(r.read())["error"] == "big.jpg is larger than 2 MB, the largest upload this server takes"
    conn.close()
    big = bytes(3 * 1024 * 1024)
    # no Content-Length (chunked): the counted stream stops at the limit
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
    status, body = call(f"{base}/api/upload?name=big.mp4", chunks, {"Content-Type": "application/octet-stream"})
    assert status == 413 and "larger than 2 MB" in body["error"]
    assert _scratch_files(queue) == []
    assert analyse(base, faces_dir / "single_face.jpg", "single_face.jpg")["state"] == "done"


def test_long_videos_are_refused(predictor, faces_dir):
    with running(create_app(predictor, Limits(max_video_s=5))) as base:
        state = analyse(base, faces_dir / "WolfgangLanger_Pexels.mp4", "crying.mp4")
    assert state["state"] == "error"
    assert state["error"] == ("crying.mp4 is 19.7 s long; this server takes videos up to 5 s "
                              "(unmask serve --max-video-s)")


def test_a_full_queue_refuses_uploads_until_a_place_frees(server, faces_dir):
    base, queue = server
    held = [queue.new_job("a.jpg"), queue.new_job("b.jpg")]  # max_jobs=2: both places taken
    status, body = upload(base, faces_dir / "single_face.jpg", "single_face.jpg")
    assert status == 429 and "busy" in body["error"]
    status, body = call(f"{base}/api/examples/{EXAMPLE_VIDEO}", b"")
    assert status == 429
    for job in held:
        queue.cancel(job, "test")
    assert analyse(base, faces_dir / "single_face.jpg", "single_face.jpg")["state"] == "done"


def test_no_server_path_is_readable(server):
    base, queue = server
    status, info = call(f"{base}/api/info")
    assert status == 200 and sorted(info["examples"]) == sorted(examples())
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/app.js/../../../etc/passwd",
                 "/api/jobs/x/..%2F..%2F..%2Fetc%2Fpasswd", "/static/app.js", "/docs", "/openapi.json",
                 "/api/examples/..%2F__init__.py", "/api/jobs/" + "a" * 16):
        status, body = call(base + path)
        assert status in (404, 405), (path, status)
        assert b"root:" not in (body if isinstance(body, bytes) else json.dumps(body).encode())
    assert call(f"{base}/api/examples/..%2Fapp.py", b"")[0] == 404
    # README.md sits beside the examples but is not one: only the listed names run
    status, body = call(f"{base}/api/examples/README.md", b"")
    assert status == 404 and "unknown example 'README.md'" in body["error"]
    # a name with folders: only its last part is kept, and the file lands in the server's own folder
    state = analyse(base, b"not an image", "../../etc/cron.d/x.jpg")
    assert state["name"] == "x.jpg" and "x.jpg" in state["error"]


def test_every_shipped_example_shows_a_face(server):
    base, _ = server
    names = sorted(examples())
    assert len(names) == 3 and any(n.endswith(".mp4") for n in names)
    for name in names:
        status, body = call(f"{base}/api/examples/{name}", b"")
        assert status == 202, body
        state = wait(base, body["id"])
        assert state["state"] == "done" and len(state["result"]["faces"]) == 1, (name, state)


def test_the_page_shows_the_tasks_the_model_predicts(predictor, faces_dir):
    """A one-task model: the page's tasks, table and timeline hold that task only, with its title."""
    import torch

    from unmask.models import create_model
    from unmask.tasks import Task

    shown = Task("disguised", "single", ("calm", "smile", "frown"), title="displayed")
    model = create_model("single_stream", tasks=[shown], task="disguised", backbone="tiny_resnet", weights=None,
                         img_size=32, adapter_dim=8).eval()
    one = Predictor(model, predictor.ckpt, device=torch.device("cpu"))
    with running(create_app(one)) as base:
        info = call(f"{base}/api/info")[1]
        assert info["tasks"] == [{"name": "disguised", "title": "displayed", "kind": "single",
                                  "labels": ["calm", "smile", "frown"]}]
        image = analyse(base, faces_dir / "single_face.jpg", "single_face.jpg")["result"]
        video = analyse(base, examples()[EXAMPLE_VIDEO], EXAMPLE_VIDEO)["result"]
    for result in (image, video):
        assert [t["name"] for t in result["tasks"]] == ["disguised"]
        face = result["faces"][0]["tasks"]
        assert list(face) == ["disguised"] and sorted(face["disguised"]["p"]) == ["calm", "frown", "smile"]
        assert sum(face["disguised"]["p"].values()) == pytest.approx(1.0, abs=1e-5)
    assert list(video["timeline"]["p"]) == ["disguised"]


def test_serve_without_the_extra_says_how_to_install(tiny_checkpoint, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "unmask serve needs uvicorn" in err and "pip install 'unmask[serve]'" in err and "Traceback" not in err
