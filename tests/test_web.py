"""The web API through a real uvicorn server on loopback, with real photos and bad files."""

from __future__ import annotations

import concurrent.futures
import io
import logging
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from agedetect.web import ServeSettings, create_app
from built_images import encoded
from servers import AGEDETECT, ServeProcess, ThreadedServer

from shared_data import NO_FACES, PEOPLE, needs_photos

MAX_UPLOAD = 3_000_000  # small, so the over-the-limit tests send little
MAX_PIXELS = 20_000_000


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    settings = ServeSettings(max_upload_bytes=MAX_UPLOAD, max_pixels=MAX_PIXELS, max_concurrency=2)
    with ThreadedServer(create_app(settings=settings)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ThreadedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def post(client: httpx.Client, data: bytes, name: str = "photo.jpg", field: str = "image",
         content_type: str = "image/jpeg") -> httpx.Response:
    return client.post("/api/v1/predict", files={field: (name, data, content_type)})


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) - {"fields"} == {"code", "message"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body["error"]["message"]


# --------------------------------------------------------------------------- good photos


def test_healthz_and_model_info(client: httpx.Client) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.headers["cache-control"] == "no-store"
    info = client.get("/api/v1/model").json()
    assert info["age_groups"] == ["0-20", "21-26", "27-35", "36-50", "51+"]
    assert info["max_upload_bytes"] == MAX_UPLOAD and info["max_pixels"] == MAX_PIXELS
    assert len(info["sha256"]) == 64 and info["input_size"] > 0


@needs_photos
def test_couple_gives_two_faces(client: httpx.Client) -> None:
    data = (PEOPLE / "couple.jpg").read_bytes()
    response = post(client, data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    width, height = Image.open(io.BytesIO(data)).size
    assert (body["width"], body["height"]) == (width, height)
    assert len(body["faces"]) == 2
    for face in body["faces"]:
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        low, high = face["age_interval"]
        assert low <= face["age"] <= high and 15 <= face["age"] <= 80
        assert list(face["group_probabilities"]) == ["0-20", "21-26", "27-35", "36-50", "51+"]
        assert sum(face["group_probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert face["age_group"] in face["group_probabilities"]
        assert 0 < face["score"] <= 1 and len(face["landmarks"]) == 5


@needs_photos
def test_formats_and_exif_rotation(client: httpx.Client) -> None:
    """A PNG and an EXIF-rotated JPEG of the same photo find the same faces, in upright pixels."""
    picture = Image.open(PEOPLE / "img1.jpg").convert("RGB")
    picture.thumbnail((800, 800))
    upright = post(client, encoded(np.asarray(picture), "JPEG", quality=90)).json()
    png = io.BytesIO()
    picture.save(png, "PNG")
    as_png = post(client, png.getvalue(), "photo.png", content_type="image/png").json()
    # Stored sideways with orientation 6 ("rotate 90 clockwise to view"): the same photo upright.
    sideways = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    picture.transpose(Image.Transpose.ROTATE_90).save(sideways, "JPEG", quality=90, exif=exif)
    rotated = post(client, sideways.getvalue()).json()
    assert len(upright["faces"]) >= 1
    for other in (as_png, rotated):
        assert (other["width"], other["height"]) == (upright["width"], upright["height"])
        assert len(other["faces"]) == len(upright["faces"])
        assert other["faces"][0]["age"] == pytest.approx(upright["faces"][0]["age"], abs=3)
        assert np.allclose(other["faces"][0]["box"], upright["faces"][0]["box"], atol=12)


@needs_photos
def test_concurrent_requests_all_answer_the_same(client: httpx.Client, server: ThreadedServer) -> None:
    data = (PEOPLE / "couple.jpg").read_bytes()
    expected = post(client, data).json()

    def one(_: int) -> dict:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            response = post(c, data)
            assert response.status_code == 200
            return response.json()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert answers == [expected] * 8


# --------------------------------------------------------------------------- bad input


@needs_photos
def test_no_face_is_422(client: httpx.Client) -> None:
    message = assert_error(post(client, (NO_FACES / "114740.jpg").read_bytes()), 422, "no_face")
    assert "no face found" in message


@pytest.mark.parametrize(
    "data, what",
    [
        (b"", "empty"),
        (b"hello, this is text pretending to be a photo\n", "not an image format"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not an image format"),
        (np.random.default_rng(0).bytes(5000), "not an image format"),
    ],
    ids=["empty", "text", "svg", "random"],
)
def test_not_an_image_is_415(client: httpx.Client, data: bytes, what: str) -> None:
    assert what in assert_error(post(client, data), 415, "unsupported_image")


def test_truncated_jpeg_is_415(client: httpx.Client) -> None:
    rng = np.random.default_rng(1)
    whole = encoded(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8), "JPEG", quality=90)
    assert "corrupt or truncated" in assert_error(post(client, whole[: len(whole) // 2]), 415, "unsupported_image")


def test_over_the_byte_limit_is_413(client: httpx.Client) -> None:
    message = assert_error(post(client, b"\xff" * (MAX_UPLOAD + 100_000)), 413, "too_large")
    assert "limit" in message


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    """A body with no Content-Length is counted as it arrives and cut off at the limit."""
    boundary = "agedetectboundary"

    def body() -> Iterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
               "Content-Type: image/jpeg\r\n\r\n").encode()
        for _ in range(MAX_UPLOAD // 65536 + 4):
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post("/api/v1/predict", content=body(),
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert_error(response, 413, "too_large")


def test_over_the_pixel_limit_is_413(client: httpx.Client) -> None:
    big = io.BytesIO()
    Image.new("L", (6000, 4000)).save(big, "PNG")  # 24 MP in ~30 kB: a small decompression bomb
    assert len(big.getvalue()) < MAX_UPLOAD
    assert "megapixels" in assert_error(post(client, big.getvalue(), "big.png", content_type="image/png"), 413,
                                        "too_large")


def test_wrong_field_or_no_file_is_422(client: httpx.Client) -> None:
    message = assert_error(post(client, b"abc", field="photo"), 422, "invalid_request")
    assert "'image'" in message
    assert_error(client.post("/api/v1/predict", data={"image": "just text"}), 422, "invalid_request")
    assert_error(client.post("/api/v1/predict"), 422, "invalid_request")


def test_unknown_routes_and_methods_are_json(client: httpx.Client) -> None:
    assert_error(client.get("/api/v1/nothing"), 404, "not_found")
    assert_error(client.get("/api/v1/predict"), 405, "method_not_allowed")


# --------------------------------------------------------------------------- privacy


@needs_photos
def test_uploads_never_touch_disk_or_logs(client: httpx.Client, monkeypatch, caplog) -> None:
    """A 2.3 MB upload (over Starlette's 1 MB spool threshold) is parsed without any
    temporary file, and neither its bytes nor its file name reach the logs."""
    opened: list[str] = []
    real = tempfile.TemporaryFile

    def spy(*args, **kwargs):
        opened.append("TemporaryFile")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", spy)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", spy)
    monkeypatch.setattr(tempfile, "mkstemp", spy)
    data = (PEOPLE / "img1.jpg").read_bytes()
    assert 1024 * 1024 < len(data) < MAX_UPLOAD
    secret_name = "holiday-photo-of-jane-doe-8217.jpg"
    with caplog.at_level(logging.DEBUG):
        response = post(client, data, name=secret_name)
        post(client, b"junk", name=secret_name)
    assert response.status_code == 200
    assert opened == []
    assert secret_name not in caplog.text and "jane" not in caplog.text
    assert "POST /api/v1/predict" in caplog.text  # the access log is on, and holds the path only


def test_page_and_assets_are_served(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_openapi_documents_the_upload(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/api/v1/predict"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    ref = form["$ref"].rsplit("/", 1)[-1]
    assert "image" in schema["components"]["schemas"][ref]["required"]
    assert {"200", "413", "415", "422"} <= set(operation["responses"])
    assert client.get("/docs").status_code == 200


# --------------------------------------------------------------------------- agedetect serve


@pytest.mark.slow
def test_agedetect_serve_starts_and_stops(tmp_path: Path) -> None:
    with ServeProcess(cwd=tmp_path, env={"TMPDIR": str(tmp_path)}) as server:
        if PEOPLE.is_dir():
            files = {"image": ("a.jpg", (PEOPLE / "img1.jpg").read_bytes(), "image/jpeg")}
            assert httpx.post(f"{server.url}/api/v1/predict", files=files, timeout=60).status_code == 200
    assert not server.alive()
    assert server.url in server.output
    assert list(tmp_path.iterdir()) == []  # nothing written to the working or temporary folder


def test_agedetect_serve_refuses_a_bad_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [AGEDETECT, "serve", "--model", str(tmp_path / "none.onnx")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "age model not found" in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- too many requests


def test_requests_over_the_limit_get_the_json_busy_error_and_idle_connections_do_not_count() -> None:
    """Requests beyond max_requests open at once are answered at once with the same JSON error
    body and headers as every other error (uvicorn's own limit would send a bare text/plain
    503); idle keep-alive connections take no place, and the server answers again as soon
    as the open requests end."""
    import socket

    settings = ServeSettings(max_requests=2, body_timeout_s=20)
    with ThreadedServer(create_app(settings=settings)) as running:
        idle = [httpx.Client(base_url=running.url, timeout=30) for _ in range(3)]
        try:
            for client in idle:  # three connections kept open after their answer
                assert client.get("/healthz").status_code == 200
            assert httpx.get(f"{running.url}/healthz", timeout=30).status_code == 200

            stalled = []
            for _ in range(2):  # two uploads that announce 1 MB and send 10 bytes of it
                connection = socket.create_connection(("127.0.0.1", running.port))
                connection.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                                   b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\nabcd")
                stalled.append(connection)
            time.sleep(0.5)
            busy = httpx.get(f"{running.url}/healthz", timeout=30)
            message = assert_error(busy, 503, "busy")
            assert "2 requests" in message and busy.headers["retry-after"] == "1"
            assert busy.headers["referrer-policy"] == "no-referrer"
            for connection in stalled:
                connection.close()
            deadline = time.monotonic() + 20
            while httpx.get(f"{running.url}/healthz", timeout=30).status_code != 200:
                assert time.monotonic() < deadline, "the server stayed busy after the uploads were dropped"
                time.sleep(0.1)
        finally:
            for client in idle:
                client.close()
