"""The OpenAPI document drives a fuzzer (schemathesis) at a real server on every store
engine: no request gets a 5xx, and every answer matches the document.

The budget is bounded: a few dozen generated requests per operation, positive and
negative, so the whole fuzz run takes well under a minute. The streams are left out (an
SSE response never ends on its own: test_requests.py tries them with hostile input);
the job's events are fuzzed as their JSON page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.specs.openapi import checks as openapi_checks

from tests.hostile.app import jobs
from tests.hostile.conftest import ENGINES, PREFIX, build
from tests.support.server import ServerThread

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
# Not negative_data_rejection: a query parameter given twice, which the document cannot
# forbid, is read as its last value (FastAPI's way), so the check would flag any route.


def _engine_url(engine: str, tmp_path: Path) -> tuple[str, Any]:
    """A fresh store URL of ``engine`` and what removes its data afterwards."""
    if engine == "memory":
        return "memory://", None
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / 'jobwire.db'}", None
    if engine == "postgresql":
        from tests.postgres.server import drop_schema, new_schema, url_with_schema

        schema = new_schema()
        return url_with_schema(schema), lambda: asyncio.run(drop_schema(schema))
    from tests.redis.server import URL, delete_keys, new_prefix

    prefix = new_prefix()
    return f"{URL}?prefix={prefix}", lambda: delete_keys(prefix)


@pytest.fixture(params=ENGINES)
def served_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The base URL of a real server over a fresh store of one engine."""
    url, clean = _engine_url(request.param, tmp_path)
    served = jobs.using(url, max_wait_seconds=0.2, max_body_bytes=65536)
    server = ServerThread(build(served))
    asyncio.run(server.start())
    try:
        yield server.url
    finally:
        asyncio.run(server.stop())
        if clean is not None:
            with contextlib.suppress(Exception):
                clean()


# schemathesis's strategies draw from the random module, which this Hypothesis warns of.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_no_request_gets_a_5xx_and_every_answer_matches_the_document(served_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{served_url}/openapi.json")
    schema.config.update(base_url=served_url)
    operations = [
        result.ok() for result in schema.exclude(path=f"{PREFIX}/events").get_all_operations()
    ]
    assert len(operations) >= 6, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode)


def fuzz(operation: Any, mode: GenerationMode) -> None:
    """Send this operation's generated requests, checking each answer."""
    accept = {"Accept": "application/json"} if operation.path.endswith("/events") else None

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=accept, checks=CHECKS, timeout=10)

    try:
        run()
    except Unsatisfiable:
        # No invalid request exists for an operation without inputs (health).
        assert mode is GenerationMode.NEGATIVE, operation.label
