"""Privacy of ``agedetect serve``: uploads touch neither the disk nor the logs, answers are
never cached, and the pages load nothing from third parties.

The server runs as users run it, in its own process, in an empty working folder with an
empty ``TMPDIR`` and ``HOME`` (and without the test process's ``ORT_DISABLE_TELEMETRY``,
so agedetect itself must switch ONNX Runtime's telemetry off). Two witnesses watch the
disk: the folders' contents (what native code such as ONNX Runtime writes), and a Python
audit hook in the server that records every file it opens for writing, anywhere,
including the nameless temporary files (``O_TMPFILE``) that a folder listing cannot see.
"""

from __future__ import annotations

import io
import json
import os
import re
import textwrap
import time
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from agedetect.inference import DEFAULT_MODEL
from servers import ServeProcess

from shared_data import CHROMIUM, NO_FACES, PEOPLE, needs_chromium

#: Names a user's files might carry: none may reach a log, a response or the disk.
SECRET_NAMES = [
    "jane-doe-passport-scan-7731.jpg",
    "kids_birthday_party_4412.png",
    "patient-0042-intake-photo.jpg",
    "Зоя Петрова, 1987.jpg",
]

#: Installed in the server process through PYTHONPATH: logs every file it opens to write.
AUDIT_HOOK = '''
import os, sys
_log = os.open(os.environ["AGEDETECT_TEST_WRITE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | getattr(os, "O_TMPFILE", 0)

def _hook(event, args):
    if event == "open":
        path, mode, flags = args
        writes = any(c in (mode or "") for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE)
        if writes:
            os.write(_log, (repr((str(path), mode, flags)) + "\\n").encode())

sys.addaudithook(_hook)
'''


def files_under(*folders: Path) -> list[str]:
    return sorted(str(p) for folder in folders for p in folder.rglob("*"))


def disk_state(watched: dict[str, Path]) -> tuple[list[str], int]:
    """The watched folders' files, and how many writes the audit hook has logged."""
    files = files_under(watched["cwd"], watched["tmp"], watched["home"])
    return files, len(watched["writes"].read_text().splitlines())


def assert_disk_untouched(watched: dict[str, Path], before: tuple[list[str], int], during: str) -> None:
    files, writes = before
    assert files_under(watched["cwd"], watched["tmp"], watched["home"]) == files
    new = watched["writes"].read_text().splitlines()[writes:]
    assert new == [], f"the server opened files to write {during}: {new}"


def jpeg(picture: Image.Image, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def uploads() -> list[tuple[str, bytes]]:
    """(secret file name, bytes): photos with faces (one over Starlette's 1 MB spool size),
    a scene with none, and a broken file."""
    if PEOPLE.is_dir():
        photos = [(PEOPLE / "img1.jpg").read_bytes(), (PEOPLE / "couple.jpg").read_bytes(),
                  (NO_FACES / "114740.jpg").read_bytes()]
    else:
        rng = np.random.default_rng(0)
        photos = [jpeg(Image.fromarray(rng.integers(0, 255, (1200, 1600, 3), np.uint8)), 95),
                  jpeg(Image.new("RGB", (640, 480), "tan")), jpeg(Image.new("RGB", (300, 200), "gray"))]
    photos.append(photos[1][:700])  # truncated
    return list(zip(SECRET_NAMES, photos))


@pytest.fixture(scope="module")
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, dict[str, Path]]]:
    root = tmp_path_factory.mktemp("privacy")
    watched = {name: root / name for name in ("cwd", "tmp", "home")}
    for folder in watched.values():
        folder.mkdir()
    hook = root / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(AUDIT_HOOK))
    write_log = root / "writes.log"
    model = DEFAULT_MODEL  # its sidecar has the typical error table /api/v1/gap needs
    env = {
        "TMPDIR": str(watched["tmp"]),
        "HOME": str(watched["home"]),
        "XDG_CACHE_HOME": None,
        "ORT_DISABLE_TELEMETRY": None,  # agedetect must set it itself
        "PYTHONPATH": str(hook),
        "AGEDETECT_TEST_WRITE_LOG": str(write_log),
    }
    with ServeProcess("--model", str(model), cwd=watched["cwd"], env=env) as server:  # access log on
        watched["writes"] = write_log
        yield server, watched


def test_uploads_touch_no_disk_and_no_log(private_server) -> None:
    server, watched = private_server
    at_start = disk_state(watched)
    assert at_start[0] == [], f"agedetect serve wrote at start-up: {at_start[0]}"

    sent = uploads()
    assert len(sent[0][1]) > 1024 * 1024  # over Starlette's spool threshold
    answers = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for name, data in sent:
            files = {"image": (name, data, "image/jpeg")}
            answers.append(client.post("/api/v1/predict", files=files))
            answers.append(client.post("/api/v1/screen", files=files, data={"min_age": "18", "buffer": "7"}))
            answers.append(client.post("/api/v1/gap", files=files, data={"age": "40"}))
            answers.append(client.post("/api/v1/check", files=files, data={"age": "40"}))  # the page's request
    statuses = sorted({a.status_code for a in answers})
    assert 200 in statuses and 415 in statuses and all(s < 500 for s in statuses), statuses
    time.sleep(0.5)  # let the access log reach the pipe

    # The disk: nothing in the folders, nothing opened for writing anywhere.
    assert_disk_untouched(watched, at_start, "while handling uploads")

    # The logs: the access log is on and names the paths, but no file name and no bytes.
    log = server.raw_output
    assert b"POST /api/v1/predict" in log and b"POST /api/v1/gap" in log and b"POST /api/v1/check" in log
    for name, data in sent:
        for text in (name, Path(name).stem):
            assert text.encode() not in log, f"{text!r} reached the server log"
            assert all(text not in a.text for a in answers), f"{text!r} echoed in a response"
        for start in range(0, len(data) - 32, max(1, len(data) // 8)):
            assert data[start : start + 32] not in log  # no slice of the upload
    assert b"JFIF" not in log and b"\xff\xd8\xff" not in log


def test_every_answer_says_no_store_no_referrer_and_nosniff(private_server) -> None:
    server, _ = private_server
    with httpx.Client(base_url=server.url, timeout=60) as client:
        photo = uploads()[1][1]
        answers = {
            "page": client.get("/"),
            "script": client.get("/static/app.js"),
            "health": client.get("/healthz"),
            "model": client.get("/api/v1/model"),
            "openapi": client.get("/openapi.json"),
            "docs": client.get("/docs"),
            "redoc": client.get("/redoc"),
            "predict": client.post("/api/v1/predict", files={"image": ("a.jpg", photo, "image/jpeg")}),
            "not an image": client.post("/api/v1/predict", files={"image": ("a.jpg", b"text", "image/jpeg")}),
            "too large": client.post("/api/v1/predict", files={"image": ("a.jpg", b"\0" * 11_000_000)}),
            "no field": client.post("/api/v1/predict"),
            "not found": client.get("/nothing/here"),
            "wrong method": client.delete("/api/v1/predict"),
        }
    for what, response in answers.items():
        assert response.headers.get("cache-control") == "no-store", what
        assert response.headers.get("referrer-policy") == "no-referrer", what
        assert response.headers.get("x-content-type-options") == "nosniff", what
    assert answers["predict"].status_code in (200, 422)


def same_origin_references(html: str) -> list[str]:
    """Every src/href/url the page loads; fails on any that leaves the server."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""", html)
    references = [a or b for a, b in found]
    external = [r for r in references if re.match(r"^(?:[a-z]+:)?//", r, re.I)]
    assert external == [], f"loads from outside the server: {external}"
    return references


@pytest.mark.parametrize("page", ["/", "/docs", "/redoc"])
def test_pages_load_only_their_own_files(private_server, page: str) -> None:
    """The page and the API docs work offline and tell no CDN who reads them."""
    server, _ = private_server
    html = httpx.get(server.url + page).text
    references = same_origin_references(html)
    assert references, html
    for reference in references:
        if reference.startswith(("data:", "#")):
            continue  # inline, nothing to fetch
        assert reference.startswith("/"), reference
        assert httpx.get(server.url + reference).status_code == 200, reference




@pytest.mark.browser
@pytest.mark.slow
@needs_chromium
def test_docs_render_with_the_internet_cut_off(private_server) -> None:
    """Headless Chromium opens /docs with every request off the server refused: the
    operations still show."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    server, _ = private_server
    refused: list[str] = []

    def only_the_server(route) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", only_the_server)
            page.goto(server.url + "/docs")
            page.get_by_text("/api/v1/predict", exact=True).wait_for(timeout=20_000)
            shown = page.inner_text("body")
        finally:
            browser.close()
    for path in ("/api/v1/predict", "/api/v1/screen", "/api/v1/gap", "/healthz"):
        assert path in shown
    assert refused == []
    assert json.loads(httpx.get(server.url + "/openapi.json").text)["info"]["title"] == "agedetect"


def test_live_frames_touch_no_disk_and_no_log(private_server) -> None:
    """Camera frames over /api/v1/live: processed and forgotten like uploads."""
    from websockets.sync.client import connect

    server, watched = private_server
    at_start = disk_state(watched)
    frames = [data for _, data in uploads() if len(data) < 1_000_000]
    with connect(f"ws://127.0.0.1:{server.port}/api/v1/live") as socket:
        socket.recv(timeout=30)
        answers = []
        for data in frames:
            time.sleep(0.1)
            socket.send(data)
            answers.append(json.loads(socket.recv(timeout=60)))
    assert any(a.get("type") == "faces" for a in answers) and any("error" in a for a in answers), answers
    time.sleep(0.5)
    assert_disk_untouched(watched, at_start, "during a live session")
    log = server.raw_output
    assert b"/api/v1/live" in log  # the access log saw the connection...
    for data in frames:  # ...and nothing of the frames
        for start in range(0, len(data) - 32, max(1, len(data) // 8)):
            assert data[start : start + 32] not in log
