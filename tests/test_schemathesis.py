"""OpenAPI-driven run against the live service: no input makes it answer 5xx (bounded for CI)."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.api_fixture import ADMIN, bearer, serve, write_service

MAX_EXAMPLES = 6


def test_no_server_errors(tmp_path: Path) -> None:
    config = write_service(tmp_path, extra={"limits": {"maxRequestBytes": 65536, "maxWorkloadsPerRequest": 5,
                                                        "timeLimitSeconds": 0.5, "maxTimeLimitSeconds": 0.5}})
    with serve(config) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        tried = 0
        for result in schema.get_all_operations():
            operation = result.ok()

            # a watch streams until its timeoutSeconds: tests/test_api_conventions.py reads those streams
            @given(case=operation.as_strategy().filter(lambda c: not (c.query or {}).get("watch")))
            @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None)
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=url, headers=bearer(ADMIN), timeout=30)
                case.validate_response(response, checks=[not_a_server_error])

            check()
            tried += 1
        assert tried >= 8
