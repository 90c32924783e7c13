"""The live camera WebSocket (``/api/v1/live``) on a real server: per-person decisions
after enough frames, starting over when a face leaves, and every hostile or excessive
client answered with a clear message (never a crash, never a traceback)."""

from __future__ import annotations

import io
import json
import math
import time
from typing import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from agedetect.inference import AgeEstimator
from agedetect.web import ServeSettings, create_app
from agedetect.web import live as live_module

from clips import THREE_PEOPLE, clip_frames, jpeg, shots
from servers import ThreadedServer
from shared_data import PEOPLE, needs_photos

websockets_client = pytest.importorskip("websockets.sync.client", reason="websockets is not installed (pip install -e .)")
connect = websockets_client.connect
from websockets.exceptions import ConnectionClosed  # noqa: E402

pytestmark = needs_photos
MIN = live_module.MIN_FRAMES


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    app = create_app(AgeEstimator(threads=1), settings=ServeSettings(max_live_sessions=2))
    with ThreadedServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def frames() -> dict:
    """An adult in a slow pan (with the shipped model's estimate of the still photo), and a
    scene with no one."""
    estimator = AgeEstimator(threads=1)
    adult = [jpeg(rgb) for rgb in clip_frames(shots(estimator, THREE_PEOPLE[1:2], 3.0), 5)]
    still_age = estimator.predict(PEOPLE / THREE_PEOPLE[1])[0].age
    empty = [jpeg(np.full((480, 640, 3), 120, np.uint8))]
    return {"adult": adult, "empty": empty, "still_age": still_age}


def url(server: ThreadedServer, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/api/v1/live{query}"


def exchange(socket, data: bytes | str) -> dict:
    socket.send(data)
    return json.loads(socket.recv(timeout=30))


def paced(socket, data: bytes | str) -> dict:
    """Send as the page does: never faster than the server's frame rate."""
    time.sleep(1.0 / live_module.MAX_FPS + 0.01)
    return exchange(socket, data)


def test_a_decision_comes_after_enough_frames_and_starts_over_when_the_face_leaves(server, frames) -> None:
    with connect(url(server, "?min_age=18&buffer=7")) as socket:
        ready = json.loads(socket.recv(timeout=10))
        assert ready["type"] == "ready" and ready["min_frames"] == MIN and ready["policy"]["threshold"] == 25
        answers = [paced(socket, frames["adult"][i % len(frames["adult"])]) for i in range(MIN + 2)]
        people = [a["faces"][0] for a in answers]
        assert [p["frames"] for p in people] == list(range(1, MIN + 3))
        assert {p["person"] for p in people} == {1}
        assert all(p["decision"] is None for p in people[: MIN - 1])
        assert "of 10 frames" in people[0]["message"]
        assert frames["still_age"] >= 30  # so the adult passes Challenge 25 by a margin
        assert [p["decision"] for p in people[MIN - 1 :]] == ["pass"] * 3
        # the camera's estimate, over frames of a panned and rescaled face, is the photo's
        assert abs(people[-1]["age"] - frames["still_age"]) <= 5
        # one number shown one way: the whole years are the reported age rounded, halves up
        assert all(p["age_years"] == math.floor(p["age"] + 0.5) for p in people)
        # Nobody for more than a second: the person is forgotten and starts over.
        deadline = time.monotonic() + 1.3
        while time.monotonic() < deadline:
            assert paced(socket, frames["empty"][0])["faces"] == []
        back = paced(socket, frames["adult"][0])["faces"][0]
        assert back["person"] == 2 and back["frames"] == 1 and back["decision"] is None


def test_a_stricter_policy_refers_the_same_face(server, frames) -> None:
    with connect(url(server, "?min_age=40&buffer=10")) as socket:
        socket.recv(timeout=10)
        answers = [paced(socket, frames["adult"][i]) for i in range(MIN)]
    assert answers[-1]["faces"][0]["decision"] == "refer"
    assert "legal age 40 + 10" in answers[-1]["faces"][0]["message"]


def test_hostile_messages_get_clear_errors_and_the_session_goes_on(server, frames) -> None:
    with connect(url(server), max_size=None) as socket:
        socket.recv(timeout=10)
        assert exchange(socket, "hello")["error"]["code"] == "bad_message"
        assert paced(socket, b"\x00garbage" * 100)["error"]["code"] == "unsupported_image"
        assert paced(socket, b"x" * (live_module.MAX_FRAME_BYTES + 1))["error"]["code"] == "too_large"
        huge = io.BytesIO()
        Image.new("RGB", (2000, 2000), "gray").save(huge, "PNG")  # 4 megapixels in a few kB
        answer = paced(socket, huge.getvalue())
        assert answer["error"]["code"] == "too_large" and "megapixels" in answer["error"]["message"]
        # Still serving: a real frame is answered.
        assert paced(socket, frames["adult"][0])["type"] == "faces"


def test_a_flood_of_bad_messages_closes_the_session(server) -> None:
    with connect(url(server)) as socket:
        socket.recv(timeout=10)
        codes = []
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(live_module.MAX_BAD_MESSAGES + 3):
                codes.append(exchange(socket, "{}")["error"]["code"])
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert set(codes) == {"bad_message"} and len(codes) == live_module.MAX_BAD_MESSAGES + 1


def test_frames_faster_than_the_limit_are_refused(server) -> None:
    """Frames bunched together (jitter) are read up to FRAME_BURST; more at once are refused."""
    small = jpeg(np.full((64, 64, 3), 90, np.uint8))
    burst, sent = live_module.FRAME_BURST, live_module.FRAME_BURST + 3
    with connect(url(server)) as socket:
        socket.recv(timeout=10)
        for _ in range(sent):
            socket.send(small)
        codes = [json.loads(socket.recv(timeout=30)).get("error", {}).get("code") for _ in range(sent)]
    assert codes[:burst] == [None] * burst and "too_fast" in codes[burst:]


def test_sessions_beyond_the_limit_are_refused_with_a_message(server) -> None:
    with connect(url(server)) as first, connect(url(server)) as second:
        first.recv(timeout=10)
        second.recv(timeout=10)
        with connect(url(server)) as third:
            refusal = json.loads(third.recv(timeout=10))
            with pytest.raises(ConnectionClosed) as closed:
                third.recv(timeout=10)
    assert refusal["error"]["code"] == "busy" and "limit of 2 live sessions" in refusal["error"]["message"]
    assert closed.value.rcvd.code == 1013
    # The two that left free their places.
    with connect(url(server)) as again:
        assert json.loads(again.recv(timeout=10))["type"] == "ready"
    assert httpx.get(f"{server.url}/healthz").status_code == 200


@pytest.mark.parametrize("query", ["?min_age=abc", "?min_age=18&buffer=500", "?min_age=-1"])
def test_a_bad_policy_is_refused(server, query: str) -> None:
    with connect(url(server, query)) as socket:
        answer = json.loads(socket.recv(timeout=10))
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)
    assert answer["error"]["code"] == "invalid_request"


def test_an_idle_session_is_closed(server, monkeypatch) -> None:
    monkeypatch.setattr(live_module, "IDLE_TIMEOUT_S", 0.5)
    with connect(url(server)) as socket:
        socket.recv(timeout=10)
        answer = json.loads(socket.recv(timeout=10))
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)
    assert answer["error"]["code"] == "idle"


def test_agedetect_serve_refuses_oversized_messages_at_the_protocol() -> None:
    """``agedetect serve`` caps WebSocket messages at 2 MB: a 3 MB one closes the session
    (1009, message too big) before the app reads it, and the server goes on."""
    from servers import ServeProcess

    with ServeProcess("--no-access-log") as served:
        with connect(f"ws://127.0.0.1:{served.port}/api/v1/live", max_size=None) as socket:
            socket.recv(timeout=30)
            socket.send(b"\xff" * 3_000_000)
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert served.alive() and httpx.get(f"{served.url}/healthz").status_code == 200
        assert "Traceback" not in served.output
