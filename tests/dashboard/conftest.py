"""A real server per test, over its own SQLite file, with the dashboard's settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.app import PREFIX, build, jobs
from tests.support.server import ServerThread

KEYS = "alice-key=alice,bob-key=bob"
UI = PREFIX + "/ui"

Serve = Callable[..., Awaitable[ServerThread]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """``await serve(api_keys=..., dashboard_open=...)``: a started server."""
    started: list[ServerThread] = []

    async def start(**settings: Any) -> ServerThread:
        served = jobs.using(
            f"sqlite:///{tmp_path / f'jobwire-{len(started)}.db'}",
            lease_seconds=5.0,
            cancel_grace_seconds=1.0,
            shutdown_grace_seconds=1.0,
            sse_keepalive_seconds=1.0,
            **settings,
        )
        server = ServerThread(build(served))
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def sign_in(client: httpx.AsyncClient, key: str) -> None:
    """Sign in as a browser would: the form, then the session cookie."""
    answer = await client.post(
        f"{UI}/login",
        content=f"api_key={key}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": str(client.base_url).rstrip("/"),
        },
    )
    assert answer.status_code == 303, answer.text


def csrf_of(page: str) -> str:
    marker = '<meta name="jobwire-csrf" content="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


async def submit(client: httpx.AsyncClient, key: str, job: str, args: dict[str, Any]) -> str:
    answer = await client.post(
        PREFIX, json={"job": job, "args": args}, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


async def wait_state(
    client: httpx.AsyncClient, key: str, job_id: str, within: float = 20.0
) -> dict[str, Any]:
    """Long-poll the API until the job ends."""
    answer = await client.get(
        f"{PREFIX}/{job_id}",
        params={"wait": within},
        headers={"Authorization": f"Bearer {key}"},
        timeout=within + 5,
    )
    view: dict[str, Any] = answer.json()
    return view
