"""The exceptions agedetect raises. Each message says what was wrong and what to do.

Every error a user can cause derives from :class:`AgeDetectError`, so callers (the CLI,
the web app) can catch one type and show the message instead of a traceback.
"""

from __future__ import annotations


class AgeDetectError(Exception):
    """Base class of every error agedetect raises on purpose."""


class ImageError(AgeDetectError, ValueError):
    """An input could not be used as an image."""


class UnreadableImageError(ImageError):
    """The bytes are not an image format we can decode (or the file cannot be read)."""


class ImageTooLargeError(ImageError):
    """The image has more pixels (or bytes) than allowed: a possible decompression bomb."""


class NoFaceError(AgeDetectError, ValueError):
    """No face was found in an image where one was required."""


class ModelError(AgeDetectError, RuntimeError):
    """A model file is missing, corrupt, or not an agedetect model."""


class DataError(AgeDetectError, ValueError):
    """A dataset folder, manifest or labels file is missing or malformed."""


class NoSuchFaceError(AgeDetectError, ValueError):
    """A face was asked for by number, and the photo has fewer faces."""


class VideoError(ImageError):
    """A video file could not be used."""


class UnreadableVideoError(VideoError, UnreadableImageError):
    """Not a video agedetect can decode: corrupt, truncated, no video stream, or a codec
    the bundled decoders lack."""


class VideoTooLargeError(VideoError, ImageTooLargeError):
    """A video longer than the limit, or with frames larger than allowed."""
