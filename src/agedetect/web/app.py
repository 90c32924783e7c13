"""The app factory: ``create_app()`` builds the FastAPI app; the model loads once, in its lifespan.

Privacy by construction: an upload is read into memory, decoded, and dropped with the
request. Nothing writes it to disk (Starlette's multipart parser would spool files over
1 MB to a temporary file; its threshold is raised above our body limit), nothing logs it
or its file name, and every answer says ``Cache-Control: no-store``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import anyio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agedetect import __version__
from agedetect.errors import AgeDetectError
from agedetect.files import default_workers
from agedetect.inference import AgeEstimator
from agedetect.web.errors import InvalidFields, error_response, handle_error
from agedetect.web.live import LiveSessions
from agedetect.web.live import router as live_router
from agedetect.web.routes import STATIC, router
from agedetect.web.service import PredictionService
from agedetect.web.uses_routes import router as uses_router

#: Room for the multipart framing around the file (boundaries, headers, a file name).
_MULTIPART_OVERHEAD = 64 * 1024

_PRIVACY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@dataclass(frozen=True)
class ServeSettings:
    """The server's limits.

    Attributes:
        max_upload_bytes: largest accepted upload (413 above it).
        max_pixels: largest accepted image, width x height (413 above it); bounds the
            memory one decode takes (3 bytes a pixel).
        max_concurrency: photos processed at once; more requests wait their turn.
        body_timeout_s: longest wait for the next part of a request body (408 after it),
            so a client that stops sending mid-upload cannot hold a connection forever.
        max_requests: requests open at once (uploading, waiting or being answered); one
            more gets a JSON 503 ``busy`` at once, with every error's headers and
            ``Retry-After``, instead of queueing its upload in memory. Idle keep-alive
            connections do not count.
        max_live_sessions: live camera sessions at once (``/api/v1/live``); more are
            refused with a message.
    """

    max_upload_bytes: int = 10_000_000
    max_pixels: int = 40_000_000
    max_concurrency: int = default_workers()
    body_timeout_s: float = 15.0
    max_requests: int = 64
    max_live_sessions: int = 4

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_concurrency", "max_requests", "max_live_sessions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
        if isinstance(self.body_timeout_s, bool) or not isinstance(self.body_timeout_s, (int, float)) or not (
            self.body_timeout_s > 0
        ):
            raise ValueError(f"body_timeout_s must be a number of seconds > 0, not {self.body_timeout_s!r}")


def create_app(
    estimator: AgeEstimator | None = None,
    *,
    model: str | Path | None = None,
    settings: ServeSettings | None = None,
) -> FastAPI:
    """The web app. ``estimator`` (or a new one on ``model``, default the shipped model)
    is loaded and warmed up in the lifespan, before the first request is accepted."""
    settings = settings or ServeSettings()
    if estimator is None:
        estimator = AgeEstimator(model, threads=1)

    # Keep every upload that passes the body limit in memory (see the module docstring).
    body_limit = settings.max_upload_bytes + _MULTIPART_OVERHEAD
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, body_limit)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(estimator.warm_up)
        return_freed_memory_promptly()
        app.state.service = PredictionService(
            estimator,
            max_upload_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
            max_concurrency=settings.max_concurrency,
        )
        yield

    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from files shipped in the
    # package instead of a CDN, so they work offline and tell no third party who reads them.
    app = FastAPIOffline(
        title="agedetect",
        version=__version__,
        summary="Estimate the age of every face in a photo, with an 80% interval.",
        description=(
            "Photos are processed in memory and never stored or logged. Errors answer "
            '`{"error": {"code", "message"}}` with 413 (too large), 415 (not an image), '
            "or 422 (no face found, or no `image` field)."
        ),
        lifespan=lifespan,
    )
    for kind in (AgeDetectError, RequestValidationError, HTTPException, InvalidFields, Exception):
        app.add_exception_handler(kind, handle_error)
    app.include_router(router)
    app.include_router(uses_router)  # /api/v1/screen, /api/v1/gap, /api/v1/check (the page's one request)
    app.include_router(live_router)  # /api/v1/live, a WebSocket
    app.state.live_sessions = LiveSessions(settings.max_live_sessions)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(PrivacyMiddleware, max_body_bytes=body_limit, body_timeout_s=settings.body_timeout_s,
                       max_requests=settings.max_requests)
    return app


def return_freed_memory_promptly(threshold: int = 1 << 20) -> bool:
    """Have glibc give large freed blocks (decoded photos) back to the system at once.

    glibc raises its mmap threshold after the first large block is freed, so later photo
    buffers come from per-thread heaps that keep their pages when the request ends; as the
    server's worker threads take turns, each ends up holding the pages of the largest photo
    it decoded, and resident memory ratchets up with traffic (measured: 165 MB at start,
    675 MB after a few 36-megapixel photos). A fixed threshold keeps buffers of 1 MB and
    more in their own mappings, returned when freed. Linux with glibc only; returns whether
    it applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_mmap_threshold = -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, threshold))
    except (OSError, AttributeError):  # another C library (musl has no mallopt)
        return False


class PrivacyMiddleware:
    """Adds no-store and related headers to every answer, refuses request bodies over
    ``max_body_bytes`` (413) before they are read into memory, bodies that stall for
    ``body_timeout_s`` (408), and requests beyond ``max_requests`` open at once (503
    ``busy``), each with the app's JSON error body."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout_s: float = 15.0, max_requests: int = 64) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.max_requests = max_requests
        self.open_requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.open_requests >= self.max_requests:
            busy = error_response(503, "busy", f"the server is answering {self.max_requests} requests already; "
                                               "try again in a moment")
            busy.headers.update({"retry-after": "1", "connection": "close", **_PRIVACY_HEADERS})
            await busy(scope, receive, send)
            return
        self.open_requests += 1
        try:
            await self._answer(scope, receive, send)
        finally:
            self.open_requests -= 1

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        received = 0
        body_done = False

        def too_large() -> HTTPException:
            return HTTPException(413, f"upload is over the limit of {limit / 1e6:.0f} MB; send a smaller photo")

        async def limited_receive() -> Message:
            # Raised while the endpoint reads its body, so the app's one error handler
            # answers it (FastAPI passes HTTPExceptions from body parsing through).
            nonlocal received, body_done
            if body_done:  # after the body only a disconnect comes, whenever it comes
                return await receive()
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                raise too_large()
            with anyio.move_on_after(self.body_timeout_s) as waiting:
                message = await receive()
            if waiting.cancelled_caught:  # a client that stopped sending would hold the connection
                raise HTTPException(
                    408, f"the upload stalled (nothing arrived for {self.body_timeout_s:g} s); send it again"
                )
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body with no declared length
                    raise too_large()
                body_done = not message.get("more_body", False)
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _PRIVACY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, limited_receive, send_with_headers)
