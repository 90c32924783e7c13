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

from servers import ServeProcess
from uses_support import model_with_typical_error

OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/api/v1/model"),
    ("POST", "/api/v1/predict"),
    ("POST", "/api/v1/screen"),
    ("POST", "/api/v1/gap"),
]
#: Generated requests per operation and mode.
EXAMPLES = 50


#: Operations without parameters have no invalid requests to generate.
TAKES_INPUT = {("POST", "/api/v1/predict"), ("POST", "/api/v1/screen"), ("POST", "/api/v1/gap")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    # /api/v1/gap needs the model's typical error table (503 without one).
    model = model_with_typical_error(tmp_path_factory.mktemp("model"))
    with ServeProcess("--no-access-log", "--model", str(model)) as running:
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
