"""Fuzz the web API from its own OpenAPI schema (Schemathesis) against ``agedetect serve``.

Every operation gets requests generated from the schema, valid ones and invalid ones:
the server must never answer 5xx, and every answer must match the schema (documented
status codes, declared content types and bodies) and carry ``Cache-Control: no-store``.
Bounded: 50 examples per operation and mode, a deadline per example, so the
whole file runs in well under a minute.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from agedetect.inference import DEFAULT_MODEL
from servers import ServeProcess

OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/api/v1/model"),
    ("POST", "/api/v1/predict"),
    ("POST", "/api/v1/screen"),
    ("POST", "/api/v1/gap"),
    ("POST", "/api/v1/check"),
]
#: Generated requests per operation and mode.
EXAMPLES = 50


#: Operations without parameters have no invalid requests to generate.
TAKES_INPUT = {("POST", "/api/v1/predict"), ("POST", "/api/v1/screen"), ("POST", "/api/v1/gap"), ("POST", "/api/v1/check")}


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    # /api/v1/gap needs the model's typical error table (503 without one): the shipped one has it.
    with ServeProcess("--no-access-log", "--model", str(DEFAULT_MODEL)) as running:
        yield running


@pytest.fixture(scope="module")
def api_schema(server: ServeProcess):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_every_operation_is_fuzzed(api_schema) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)  # a new endpoint joins OPERATIONS to be fuzzed


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_answers_follow_the_schema(api_schema, server: ServeProcess, method: str, path: str, mode) -> None:
    if mode is schemathesis.GenerationMode.NEGATIVE and (method, path) not in TAKES_INPUT:
        pytest.skip("no parameters, so no invalid request to make")
    operation = api_schema[path][method]
    calls = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=10_000, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        calls.append(1)
        # A schema-valid upload is any bytes; only a photo can pass, so the check that
        # schema-valid requests succeed does not apply here. Every other check does.
        response = case.call_and_validate(base_url=server.url, timeout=30,
                                          excluded_checks=[schemathesis.checks.positive_data_acceptance])
        assert response.status_code < 500
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
        assert response.headers["cache-control"] == ["no-store"]

    check()
    assert calls  # requests were made


UPLOADS = [op for op in OPERATIONS if op in TAKES_INPUT]


@pytest.fixture(scope="module")
def face_photo() -> bytes:
    from test_hostile_uploads import format_cases  # the same 640x480 photo as the hostile corpus

    return format_cases()[0].data


@pytest.mark.parametrize("method, path", UPLOADS, ids=[f"{m} {p}" for m, p in UPLOADS])
def test_a_real_photo_with_any_valid_fields_is_accepted(api_schema, server: ServeProcess, face_photo: bytes,
                                                        method: str, path: str) -> None:
    """Schema-valid form fields (ages, buffers, bases, contexts at their edges and between)
    with a real photo in ``image``: every such request succeeds, unless the photo has no
    face, and the answer parses as the endpoint's response model."""
    from agedetect.web.schemas import PredictResponse
    from agedetect.web.uses_routes import CheckResponse, GapResponse, ScreenResponse

    model = {"/api/v1/predict": PredictResponse, "/api/v1/screen": ScreenResponse, "/api/v1/gap": GapResponse,
             "/api/v1/check": CheckResponse}[path]
    operation = api_schema[path][method]

    def with_photo(case):
        # A form cannot carry null: a client leaves an optional field out (the schema's
        # anyOf [integer, null] for an optional form field is FastAPI's way of saying so).
        case.body = {key: value for key, value in {**case.body, "image": face_photo}.items() if value is not None}
        return case

    @given(case=operation.as_strategy().map(with_photo))
    @settings(max_examples=20, deadline=20_000, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        # The photo replaced a generated body, so Schemathesis no longer knows the case is
        # valid (the check that invalid data is refused does not apply), and its response
        # check trips on prefixItems in mutated cases (schemathesis#4099): the answer is
        # checked against the app's own response model instead.
        response = case.call_and_validate(base_url=server.url, timeout=30, excluded_checks=[
            schemathesis.checks.negative_data_rejection, schemathesis.checks.response_schema_conformance])
        form = case.body
        if response.status_code == 200:
            model.model_validate(response.json())
        elif path in ("/api/v1/screen", "/api/v1/check") and form.get("min_age", 18) + form.get("buffer", 7) > 100:
            # Each field is 0..100 on its own; their sum is the one rule a schema cannot say.
            assert response.json()["error"]["code"] == "invalid_request"
        elif (form.get("face") or 1) > 1:
            # The photo has one face: a schema-valid face number past it is named as such.
            expected = "no_such_face" if path == "/api/v1/gap" else "invalid_request"
            assert response.json()["error"]["code"] == expected, response.text[:500]
        else:
            assert response.json()["error"]["code"] == "no_face", (response.text[:500], {k: v for k, v in form.items() if k != "image"})

    check()
