"""Uploads in, predictions out: the work behind every endpoint that takes a photo.

Routes stay thin: they call :meth:`PredictionService.read_upload` and
:meth:`PredictionService.analyse` and shape the answer. Uploads live in memory only and
model work runs in worker threads, at most ``max_concurrency`` at a time, so a burst of
requests waits its turn instead of decoding dozens of photos at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import anyio
from fastapi import UploadFile

from agedetect.errors import ImageTooLargeError, UnreadableImageError
from agedetect.images import load_image
from agedetect.inference import AgeEstimator, FacePrediction

T = TypeVar("T")


@dataclass(frozen=True)
class Analysis:
    """What one uploaded photo gave: its upright size and its faces, largest first."""

    width: int
    height: int
    faces: list[FacePrediction]


class PredictionService:
    """Holds the loaded estimator and the limits; shared by all requests."""

    def __init__(self, estimator: AgeEstimator, *, max_upload_bytes: int, max_pixels: int, max_concurrency: int) -> None:
        self.estimator = estimator
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self._limiter = anyio.CapacityLimiter(max_concurrency)

    async def read_upload(self, upload: UploadFile) -> bytes:
        """The uploaded file's bytes (kept in memory; never written anywhere)."""
        # The body limit already bounds this; reading one byte more tells "at the limit"
        # from "over it" without trusting the client's declared size.
        data = await upload.read(self.max_upload_bytes + 1)
        if len(data) > self.max_upload_bytes:
            raise ImageTooLargeError(
                f"uploaded file is over the limit of {self.max_upload_bytes / 1e6:.0f} MB; "
                "send a smaller photo"
            )
        if not data:
            raise UnreadableImageError("uploaded file is empty")
        return data

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking model work in a worker thread, within the concurrency bound."""
        return await anyio.to_thread.run_sync(functools.partial(function, *args), limiter=self._limiter)

    async def analyse(self, data: bytes) -> Analysis:
        """Decode, find faces and estimate ages; an empty ``faces`` when there are none.

        Raises:
            UnreadableImageError: not an image we can decode.
            ImageTooLargeError: more pixels than ``max_pixels``.
        """
        return await self.run(self._analyse, data)

    def _analyse(self, data: bytes) -> Analysis:
        rgb = load_image(data, max_pixels=self.max_pixels)
        faces = self.estimator.predict_image(rgb)
        return Analysis(width=rgb.shape[1], height=rgb.shape[0], faces=faces)
