"""Property-based tests from the OpenAPI document (schemathesis): whatever a client sends to
any GET endpoint, the API answers without a server error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from gridmap.api.app import create_app
from gridmap.settings import Settings
from tests.helpers import bearer, token_for


@pytest.fixture(scope="module")
def app_client(demo_db: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=demo_db)),
                    headers=bearer(token_for(demo_db, "admin"))) as client:
        yield client


def test_no_server_errors_on_any_get(app_client: TestClient) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app_client.app)
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if op.method.upper() == "GET"]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            response = case.call(session=app_client)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query}: "
                                f"{response.status_code} {response.text[:200]}")
            case.validate_response(response, checks=[not_a_server_error])

        try:
            check()
        except Exception as exc:  # collect every endpoint's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:300]}")
    assert not failures, "\n".join(failures)
