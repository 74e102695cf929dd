"""A real server per test over each store engine, serving tests/hostile/app.py's jobs
with no credentials (so every caller is the one anonymous owner), and its client.

``serve(**settings)`` starts one; the engine comes from the ``engine`` parameter, so a
test asking for ``serve`` runs once per engine (memory, sqlite, postgresql, redis).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from jobwire import Jobwire
from tests.hostile.app import jobs
from tests.support.server import ServerThread

PREFIX = "/jobs"
ENGINES = ("memory", "sqlite", "postgresql", "redis")

Serve = Callable[..., Awaitable[ServerThread]]


def build(served: Jobwire) -> FastAPI:
    app = FastAPI(title="jobwire hostile-input app", lifespan=served.lifespan)
    app.include_router(served.router, prefix=PREFIX)
    return app


@pytest.fixture(params=ENGINES)
async def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A store URL of a fresh, empty store of one engine; removed after the test."""
    engine: str = request.param
    if engine == "memory":
        yield "memory://"
    elif engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobwire.db'}"
    elif engine == "postgresql":
        from tests.postgres.server import drop_schema, new_schema, url_with_schema

        schema = new_schema()
        yield url_with_schema(schema)
        with contextlib.suppress(Exception):
            await drop_schema(schema)
    else:
        from tests.redis.server import URL, delete_keys, new_prefix

        prefix = new_prefix()
        yield f"{URL}?prefix={prefix}"
        delete_keys(prefix)


@pytest.fixture
async def serve(engine_url: str) -> AsyncIterator[Serve]:
    started: list[ServerThread] = []

    async def start(**settings: Any) -> ServerThread:
        served = jobs.using(
            engine_url,
            sse_keepalive_seconds=0.5,
            lease_seconds=5.0,
            shutdown_grace_seconds=1.0,
            **settings,
        )
        server = ServerThread(build(served))
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()
