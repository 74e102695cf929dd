"""Each test gets a real uvicorn server over its own SQLite file, and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from jobwire import Jobwire
from tests.support.app import build
from tests.support.jobs import jobs
from tests.support.processes import no_new_child_survives
from tests.support.server import ServerThread

# The jobs the HTTP tests submit; fewer jobs, fewer job processes to start.
SERVED_JOBS = ("add", "square", "stamp", "waits_for_cancel", "constrained")
MAX_BODY_BYTES = 4096
MAX_WAIT_SECONDS = 10.0


@pytest.fixture(autouse=True)
def no_job_process_outlives_the_test() -> Iterator[None]:
    """The server's job processes are gone once it has stopped."""
    with no_new_child_survives():
        yield


@pytest.fixture
def served(sqlite_url: str) -> Jobwire:
    app = jobs.using(
        sqlite_url,
        max_body_bytes=MAX_BODY_BYTES,
        max_wait_seconds=MAX_WAIT_SECONDS,
        process_concurrency=1,
        cancel_grace_seconds=0.5,
        poll_seconds=0.5,
    )
    app.registry = {name: app.registry[name] for name in SERVED_JOBS}
    return app


@pytest.fixture
async def server(served: Jobwire) -> AsyncIterator[ServerThread]:
    async with ServerThread(build(served)) as running:
        yield running


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http
