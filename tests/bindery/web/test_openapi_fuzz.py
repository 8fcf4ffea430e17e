"""Schemathesis against the console's OpenAPI document, as an admin with a token: no input gives a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.bindery.web.conftest import Console
from tests.support.world import ADMIN


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_input_makes_a_server_error(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINDERY_HTTP_TIMEOUT", "2")
    schema = schemathesis.openapi.from_url(f"{console.url}/openapi.json")
    headers = {"Authorization": f"Bearer {console.tokens[ADMIN]}"}
    errors: list[str] = []
    tried = []
    calls: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tried.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            response = case.call(base_url=console.url, headers=headers)
            calls.append(response.status_code)
            if response.status_code >= 500:
                errors.append(f"{case.method} {case.formatted_path} {case.body!r}: {response.status_code}")

        call()
    assert len(tried) >= 14 and len(calls) >= 10 * len(tried), (tried, len(calls))
    assert {200, 404, 422} <= set(calls), sorted(set(calls))
    assert not errors, errors[:10]
