"""The one place errors become HTTP answers: status code, stable code, human message.

Every error answer has the body ``{"error": {"code": ..., "message": ...}}``. Bad input
gets a 4xx that says what was wrong; nothing ever sends a traceback to the client.

==========================  ======  ===================
error                       status  code
==========================  ======  ===================
ImageTooLargeError          413     too_large
UnreadableImageError        415     unsupported_image
NoFaceError                 422     no_face
request validation error    422     invalid_request
a request body that stalls  408     timeout
ModelError                  503     model_unavailable
more requests than allowed  503     busy (from the app's middleware)
other AgeDetectError        400     bad_input
unexpected exception        500     internal_error
==========================  ======  ===================
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from agedetect.errors import AgeDetectError, ImageTooLargeError, ModelError, NoFaceError, UnreadableImageError
from agedetect.web.schemas import ErrorResponse

logger = logging.getLogger("agedetect.web")

#: Most specific first: the first class an error is an instance of decides.
DOMAIN_ERRORS: tuple[tuple[type[AgeDetectError], int, str], ...] = (
    (ImageTooLargeError, 413, "too_large"),
    (UnreadableImageError, 415, "unsupported_image"),
    (NoFaceError, 422, "no_face"),
    (ModelError, 503, "model_unavailable"),
    (AgeDetectError, 400, "bad_input"),
)

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    415: "unsupported_image",
    422: "invalid_request",
}

#: For the OpenAPI docs of endpoints that take an upload.
UPLOAD_ERROR_RESPONSES: dict[int | str, dict] = {
    400: {"model": ErrorResponse, "description": "A malformed multipart/form-data body"},
    413: {"model": ErrorResponse, "description": "Upload over the byte limit or image over the pixel limit"},
    415: {"model": ErrorResponse, "description": "Not an image format agedetect reads, empty, or corrupt"},
    422: {"model": ErrorResponse, "description": "No face found (code no_face), or no `image` file field"},
}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        ErrorResponse.model_validate({"error": {"code": code, "message": message}}).model_dump(),
        status_code=status,
    )


async def handle_error(request: Request, error: Exception) -> JSONResponse:
    """The app's exception handler for every error type."""
    if isinstance(error, AgeDetectError):
        for kind, status, code in DOMAIN_ERRORS:
            if isinstance(error, kind):
                return error_response(status, code, str(error))
    if isinstance(error, RequestValidationError):
        return error_response(422, "invalid_request", _describe_validation(error))
    if isinstance(error, HTTPException):
        code = _HTTP_CODES.get(error.status_code, "http_error")
        response = error_response(error.status_code, code, str(error.detail))
        if error.headers:
            response.headers.update(error.headers)
        return response
    # A bug, not bad input: log the type only (a message could echo user data) and say so.
    logger.error("internal error on %s %s: %s", request.method, request.url.path, type(error).__name__)
    return error_response(500, "internal_error", "the server failed on this request; it has been logged")


def _describe_validation(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ()) if part != "body"]
        field = ".".join(location) or "request"
        if item.get("type") == "missing":
            parts.append(f"missing form field {field!r}: send the photo as multipart/form-data field 'image'")
        else:
            parts.append(f"{field}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
