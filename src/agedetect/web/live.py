"""Live mode: camera frames over one WebSocket, faces tracked, an age check per person.

The page sends its camera's frames, downscaled, as binary JPEG messages to
``/api/v1/live`` (one at a time: it sends the next when the answer arrives). Each frame
goes through the photo pipeline; :class:`agedetect.tracking.Tracker` links faces across
frames; once a person has :data:`MIN_FRAMES` frames their age is fused from all of them
(the mean of distributions, as for videos) and the screening policy gives PASS or REFER.
A person who leaves (unseen for a second) is forgotten: coming back starts over.

Frames live in memory for the time their answer takes: never stored, never logged. The
server bounds what a client can ask: live sessions at once, frame bytes and pixels,
frames a second, session length and idle time, malformed messages. Every refusal is a
JSON message ``{"error": {"code", "message"}}``, then a close where the session cannot go on.

Messages from the server (JSON text):

- on connect ``{"type": "ready", "min_frames", "max_frame_bytes", "max_fps", "policy"}``;
- per frame ``{"type": "faces", "frame", "width", "height", "faces": [{"person", "box",
  "age", "age_interval", "frames", "decision", "message"}], "ms"}``, ``decision`` being
  ``null`` until the person has ``min_frames`` frames, then ``"pass"`` or ``"refer"``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from agedetect.ages import fuse_ages, reported_age, whole_years
from agedetect.errors import AgeDetectError, ImageTooLargeError
from agedetect.images import load_image
from agedetect.tracking import Tracker
from agedetect.uses import ScreeningPolicy
from agedetect.web.service import PredictionService

logger = logging.getLogger("agedetect.web")

#: Frames a person needs before the age check decides (about 2 s at the page's rate).
MIN_FRAMES = 10
#: A person's most recent frames kept for the fused estimate.
KEEP_FRAMES = 50
MAX_FRAME_BYTES = 1_000_000
#: Largest frame accepted: 1920x1080 (the page sends 640 px wide).
MAX_FRAME_PIXELS = 1920 * 1080
MAX_FPS = 15.0
#: Frames a session may have in hand at once (a token bucket refilled at MAX_FPS): the page
#: paces its frames, but a late one and the next can still reach the server bunched together
#: (network jitter, a busy event loop), and refusing the second would show the user an error.
FRAME_BURST = 2
IDLE_TIMEOUT_S = 30.0
MAX_SESSION_S = 600.0
#: Malformed messages tolerated before the session is closed.
MAX_BAD_MESSAGES = 5
#: Faces read per frame, the largest first (a till sees a few people, not a crowd).
MAX_FACES = 8

router = APIRouter()


@dataclass
class LiveSessions:
    """How many live sessions run; refuses more than ``limit``."""

    limit: int
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self) -> bool:
        with self.lock:
            if self.count >= self.limit:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.count -= 1


@dataclass
class _Person:
    distributions: deque = field(default_factory=lambda: deque(maxlen=KEEP_FRAMES))
    frames: int = 0


class LiveSession:
    """One camera's state: its tracker and each person's recent age distributions."""

    def __init__(self, service: PredictionService, policy: ScreeningPolicy) -> None:
        self.service = service
        self.policy = policy
        self.tracker = Tracker()
        self.people: dict[int, _Person] = {}
        self.started = time.monotonic()
        self.frames = 0

    def process(self, data: bytes) -> dict:
        """The answer to one frame (runs in a worker thread)."""
        began = time.perf_counter()
        rgb = load_image(data, max_pixels=min(MAX_FRAME_PIXELS, self.service.max_pixels))
        estimator = self.service.estimator
        faces = estimator.predict_image(rgb)[:MAX_FACES]
        ids = self.tracker.update(time.monotonic() - self.started, [face.box for face in faces])
        on_screen = {track.id for track in self.tracker.on_screen()}
        self.people = {tid: person for tid, person in self.people.items() if tid in on_screen}
        self.frames += 1
        answer = []
        for track_id, face in zip(ids, faces):
            person = self.people.setdefault(track_id, _Person())
            person.distributions.append(np.asarray(face.age_distribution, np.float32))
            person.frames += 1
            answer.append(self._describe(track_id, face, person))
        return {"type": "faces", "frame": self.frames, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                "faces": answer, "ms": round((time.perf_counter() - began) * 1000, 1)}

    def _describe(self, track_id: int, face, person: _Person) -> dict:
        item = {"person": track_id + 1, "box": [round(float(v), 1) for v in face.box], "frames": person.frames,
                "decision": None}
        if person.frames < MIN_FRAMES:
            item.update(age=float(reported_age(face.age)), age_years=int(whole_years(face.age)),
                        age_interval=list(face.age_interval),
                        message=f"Hold still: {person.frames} of {MIN_FRAMES} frames")
            return item
        decoded, fused = fuse_ages(np.stack(person.distributions), self.service.estimator.groups, "mean")
        age, low, high = float(decoded.age[0]), float(decoded.low[0]), float(decoded.high[0])
        risk = float(fused[: self.policy.min_age].sum())
        passed = self.policy.passes(age, low, risk)
        item.update(age=float(reported_age(age)), age_years=int(whole_years(age)), age_interval=[low, high],
                    decision="pass" if passed else "refer",
                    message=(f"Looks {self.policy.threshold} or over" if passed
                             else f"Check ID (policy: legal age {self.policy.min_age} + {self.policy.buffer})"))
        return item


def _error(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


async def _refuse(websocket: WebSocket, code: str, message: str, close_code: int) -> None:
    await websocket.send_text(_error(code, message))
    await websocket.close(close_code, reason=code)


@router.websocket("/api/v1/live")
async def live(websocket: WebSocket) -> None:
    """Live age checks: binary JPEG/PNG/WebP frames in, faces and per-person decisions out."""
    import anyio

    sessions: LiveSessions = websocket.app.state.live_sessions
    service: PredictionService = websocket.app.state.service
    await websocket.accept()
    try:
        policy = ScreeningPolicy(int(websocket.query_params.get("min_age", 18)),
                                 int(websocket.query_params.get("buffer", 7)))
    except ValueError as error:
        await _refuse(websocket, "invalid_request", f"bad age-check policy: {error}", 1008)
        return
    if not sessions.enter():
        await _refuse(websocket, "busy", f"the server runs its limit of {sessions.limit} live sessions; "
                      "try again in a minute", 1013)
        return
    try:
        session = LiveSession(service, policy)
        await websocket.send_text(json.dumps({
            "type": "ready", "min_frames": MIN_FRAMES, "max_frame_bytes": MAX_FRAME_BYTES, "max_fps": MAX_FPS,
            "policy": {"min_age": policy.min_age, "buffer": policy.buffer, "threshold": policy.threshold},
        }))
        bad = 0
        frames_in_hand, refilled = float(FRAME_BURST), time.monotonic()
        while True:
            if time.monotonic() - session.started > MAX_SESSION_S:
                await _refuse(websocket, "session_over", f"live sessions last at most {MAX_SESSION_S / 60:.0f} "
                              "minutes; start again", 1000)
                return
            with anyio.move_on_after(IDLE_TIMEOUT_S) as waiting:
                message = await websocket.receive()
            if waiting.cancelled_caught:
                await _refuse(websocket, "idle", f"no frame for {IDLE_TIMEOUT_S:g} s; start again", 1000)
                return
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            now = time.monotonic()
            frames_in_hand = min(float(FRAME_BURST), frames_in_hand + (now - refilled) * MAX_FPS)
            refilled = now
            problem = None
            if data is None:
                problem = ("bad_message", "send camera frames as binary JPEG, PNG or WebP messages")
            elif len(data) > MAX_FRAME_BYTES:
                problem = ("too_large", f"frame of {len(data)} bytes is over the limit of {MAX_FRAME_BYTES}; "
                           "send it smaller (640 px wide is plenty)")
            elif frames_in_hand < 1.0:
                problem = ("too_fast", f"at most {MAX_FPS:g} frames a second; wait for each answer")
            if problem is not None:
                bad += 1
                if bad > MAX_BAD_MESSAGES:
                    await _refuse(websocket, problem[0], f"{problem[1]} (too many refused messages: closing)", 1008)
                    return
                await websocket.send_text(_error(*problem))
                continue
            frames_in_hand -= 1.0
            try:
                answer = await service.run(session.process, data)
            except ImageTooLargeError as error:
                answer = json.loads(_error("too_large", str(error)))
            except AgeDetectError as error:
                answer = json.loads(_error("unsupported_image", f"{error}; send JPEG, PNG or WebP frames"))
            await websocket.send_text(json.dumps(answer))
    except WebSocketDisconnect:
        return
    except Exception as error:  # noqa: BLE001  a bug: logged by type only (a message could echo a frame)
        logger.error("internal error in a live session: %s", type(error).__name__)
        if websocket.application_state == WebSocketState.CONNECTED:
            try:
                await _refuse(websocket, "internal_error", "the server failed on this session; it has been logged",
                              1011)
            except Exception:  # noqa: BLE001  the client is gone
                pass
    finally:
        sessions.leave()
