"""unmask serve in a real browser: Debian's chromium driven by Playwright (its own browser download is never
used; .ci/browser installs chromium with apt). The server is the real command, ``unmask serve``, on a free
loopback port. Skips, saying why, only where no chromium can be found."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import unmask
from unmask.cli import main
from unmask.predict import read_results

pytest.importorskip("fastapi", reason="unmask serve needs the 'serve' extra (fastapi, uvicorn)")
pytest.importorskip("uvicorn", reason="unmask serve needs the 'serve' extra (fastapi, uvicorn)")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the 'test' extra)")

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  # the webcam: chromium's synthetic camera (a moving test pattern, no face), no permission prompt
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
EXAMPLE_VIDEO = "felt_sadness_shown_happiness.mp4"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = os.environ.get("UNMASK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no chromium on this machine and .ci/browser could not install it (apt-get chromium as root)")
    return path


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    """``unmask serve CHECKPOINT --port P`` in a subprocess, on a free loopback port; its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(unmask.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")]))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "unmask", "serve", str(tiny_checkpoint), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/info", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"unmask serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(20)


def _finish(page, action, timeout=60_000) -> str:
    """Run ``action`` (an upload or a click) and wait until that upload has ended; return the page's state."""
    runs = int(page.get_attribute("body", "data-runs"))
    action()
    page.wait_for_selector(f"body[data-runs='{runs + 1}']", state="attached", timeout=timeout)
    return page.get_attribute("body", "data-state")


def test_the_page_in_chromium(chromium, server, tiny_checkpoint, faces_dir, tmp_path):
    photo, landscape = faces_dir / "single_face.jpg", faces_dir / "free-mountain-vector-01.jpg"
    assert main(["predict", str(tiny_checkpoint), str(photo), "--out", str(tmp_path / "p.csv")]) == 0
    expected = read_results(tmp_path / "p.csv").iloc[0]

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900})
        try:
            page = browser.new_page()
            page.goto(server)
            page.wait_for_selector("body[data-state='idle']", state="attached", timeout=30_000)
            assert "felt (true)" in page.inner_text("#model")

            # a real face photo: one face row, each task's labels and probabilities, equal to unmask predict's
            assert _finish(page, lambda: page.set_input_files("#file", photo)) == "done"
            rows = page.locator("tr.face-row")
            assert rows.count() == 1
            assert page.locator("#faces-head th").all_inner_texts()[2:] == ["felt (true)", "shown (disguised)"]
            for task in ("true", "disguised"):
                cell = rows.nth(0).locator(f"td.task[data-task='{task}']")
                assert cell.locator(".pred b").inner_text() == expected[f"{task}_pred"]
                bars = cell.locator(".bar-row")
                labels = [bars.nth(i).get_attribute("data-label") for i in range(bars.count())]
                assert labels == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
                for i, label in enumerate(labels):
                    want = expected[f"{task}_p_{label}"]
                    assert float(bars.nth(i).get_attribute("data-p")) == pytest.approx(want, rel=1e-9)
                    assert bars.nth(i).locator(".value").inner_text() == f"{want:.3f}"
            assert page.evaluate("document.getElementById('annotated-image').naturalWidth") == 572
            page.screenshot(path=str(tmp_path / "serve_result.png"), full_page=True)
            assert (tmp_path / "serve_result.png").stat().st_size > 10_000

            # no face, then a corrupt file: a message in the page each time, and the server goes on
            assert _finish(page, lambda: page.set_input_files("#file", landscape)) == "error"
            assert page.inner_text("#message") == "no face found in free-mountain-vector-01.jpg"
            assert page.locator("#result").is_hidden()
            page.screenshot(path=str(tmp_path / "serve_no_face.png"))
            broken = {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8 not really a jpeg"}
            assert _finish(page, lambda: page.set_input_files("#file", files=[broken])) == "error"
            assert page.inner_text("#message") == "cannot read image broken.jpg (corrupt or not an image)"

            # then a shipped example video: the annotated video and the timeline appear
            button = page.locator(f"button.example[data-name='{EXAMPLE_VIDEO}']")
            assert _finish(page, button.click) == "done"
            assert page.locator("#message").is_hidden() and page.locator("#annotated-video").is_visible()
            assert page.locator("tr.face-row").count() == 1
            page.wait_for_function("document.getElementById('timeline').naturalWidth > 0", timeout=10_000)

            # a webcam still goes the same way as an upload (the fake camera shows no face)
            page.click("#webcam-start")
            page.wait_for_function("document.getElementById('webcam-video').videoWidth > 0", timeout=10_000)
            assert _finish(page, lambda: page.click("#webcam-capture")) == "error"
            assert page.inner_text("#message") == "no face found in webcam.jpg"
        finally:
            browser.close()
