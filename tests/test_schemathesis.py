"""Property-based run over the app's own OpenAPI document: no input the schema allows (and
none of the invalid ones schemathesis derives from it) produces a 5xx or a response that
breaks the documented schema. Runs against a real uvicorn server over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from assistant.api import create_app
from assistant.services import Services
from tests.servers import serve


@pytest.fixture(scope="module")
def api_url(docs_services: Services) -> Iterator[str]:
    with serve(create_app(services=docs_services), name="the API") as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(api_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json")


def test_no_server_errors_and_responses_match_schema(api_schema: schemathesis.BaseSchema) -> None:
    # Driven by hand rather than schemathesis' pytest plugin, which does not load under pytest 9.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /v1/chat", "POST /v1/feedback", "POST /v1/escalations"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(timeout=60)

        check()
