"""The one place errors become HTTP answers: status code, stable code, human message.

Every error answer has the body ``{"error": {"code": ..., "message": ...}}``. Bad input
gets a 4xx that says what was wrong; nothing ever sends a traceback to the client.

==========================  ======  ===================
error                       status  code
==========================  ======  ===================
ImageTooLargeError          413     too_large
UnreadableImageError        415     unsupported_image
NoFaceError                 422     no_face
NoSuchFaceError             422     no_such_face
request validation error    422     invalid_request (with ``fields``)
InvalidFields               422     invalid_request (with ``fields``)
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

from agedetect.errors import (
    AgeDetectError,
    ImageTooLargeError,
    ModelError,
    NoFaceError,
    NoSuchFaceError,
    UnreadableImageError,
)
from agedetect.web.schemas import ErrorResponse

logger = logging.getLogger("agedetect.web")

#: Most specific first: the first class an error is an instance of decides.
DOMAIN_ERRORS: tuple[tuple[type[AgeDetectError], int, str], ...] = (
    (ImageTooLargeError, 413, "too_large"),
    (UnreadableImageError, 415, "unsupported_image"),
    (NoFaceError, 422, "no_face"),
    (NoSuchFaceError, 422, "no_such_face"),
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


#: What people call each form field, for messages in plain sentences.
FIELD_NAMES = {
    "image": "The photo",
    "min_age": "The legal age",
    "buffer": "The buffer",
    "basis": "The basis",
    "max_risk": "The risk cap",
    "age": "Your age",
    "context": "The question",
    "face": "The face number",
}


class InvalidFields(Exception):
    """Form fields that are each valid but not together (e.g. legal age + buffer over 100):
    answered as a validation error, field by field."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(fields.values()))
        self.fields = fields


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "fields": fields}}
    return JSONResponse(ErrorResponse.model_validate(body).model_dump(exclude_none=True), status_code=status)


async def handle_error(request: Request, error: Exception) -> JSONResponse:
    """The app's exception handler for every error type."""
    if isinstance(error, AgeDetectError):
        for kind, status, code in DOMAIN_ERRORS:
            if isinstance(error, kind):
                return error_response(status, code, str(error))
    if isinstance(error, RequestValidationError):
        fields = describe_validation(error.errors())
        return error_response(422, "invalid_request", " ".join(fields.values()) or "Invalid request.", fields)
    if isinstance(error, InvalidFields):
        return error_response(422, "invalid_request", str(error), error.fields)
    if isinstance(error, HTTPException):
        code = _HTTP_CODES.get(error.status_code, "http_error")
        response = error_response(error.status_code, code, str(error.detail))
        if error.headers:
            response.headers.update(error.headers)
        return response
    # A bug, not bad input: log the type only (a message could echo user data) and say so.
    logger.error("internal error on %s %s: %s", request.method, request.url.path, type(error).__name__)
    return error_response(500, "internal_error", "the server failed on this request; it has been logged")


def describe_validation(errors: list[dict]) -> dict[str, str]:
    """Each invalid field with what was wrong, in a plain sentence.

    >>> describe_validation([{"loc": ("body", "age"), "type": "greater_than_equal", "ctx": {"ge": 0}},
    ...                      {"loc": ("body", "buffer"), "type": "int_parsing"}])
    {'age': 'Your age must be at least 0.', 'buffer': 'The buffer must be a whole number.'}
    """
    fields: dict[str, str] = {}
    for item in errors:
        location = [str(part) for part in item.get("loc", ()) if part not in ("body", "query")]
        field = ".".join(location) or "request"
        name = FIELD_NAMES.get(field, f"The field {field!r}")
        kind, ctx = item.get("type", ""), item.get("ctx") or {}
        if kind == "missing" and field == "image":
            text = "No photo arrived: send it as the multipart/form-data file field 'image'."
        elif kind == "missing":
            text = f"{name} is missing."
        elif kind in ("int_parsing", "int_from_float", "int_type"):
            text = f"{name} must be a whole number."
        elif kind in ("float_parsing", "float_type"):
            text = f"{name} must be a number."
        elif kind in ("greater_than_equal", "greater_than"):
            text = f"{name} must be at least {ctx.get('ge', ctx.get('gt'))}."
        elif kind in ("less_than_equal", "less_than"):
            text = f"{name} must be at most {ctx.get('le', ctx.get('lt'))}."
        elif kind == "literal_error":
            text = f"{name} must be one of {ctx.get('expected', 'the listed values')}."
        else:
            text = f"{name} is not valid."
        fields.setdefault(field, text)
    return fields
