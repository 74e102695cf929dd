"""Limits: open streams per owner, and how long a long-poll may wait."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.channels.conftest import PREFIX, Server, read_sse, submit, ws_refusal

ALICE = {"Authorization": "Bearer ka"}
BOB = {"Authorization": "Bearer kb"}
MAX_STREAMS = 2
MAX_WAIT = 5


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(
        tmp_path_factory.mktemp("limits"),
        {
            "JOBWIRE_API_KEYS": "ka=alice,kb=bob",
            "JOBWIRE_MAX_STREAMS_PER_OWNER": str(MAX_STREAMS),
            "JOBWIRE_MAX_WAIT_SECONDS": str(MAX_WAIT),
        },
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(limited_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=30) as http:
        yield http


@pytest.fixture
async def running_job(client: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[str]:
    """Alice's job, blocked on its gate until the test ends."""
    gate = tmp_path / "gate"
    job_id = await submit(
        client, "gated", {"before": 0, "after": 0, "gate": str(gate)}, headers=ALICE
    )
    yield job_id
    gate.touch()


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> AsyncIterator[httpx.Response]:
    """A stream held open (unread) for the block; yields the response, whatever its status."""
    request = client.build_request("GET", path, headers={**headers, "Accept": "text/event-stream"})
    response = await client.send(request, stream=True)
    try:
        yield response
    finally:
        await response.aclose()


async def until_a_stream_opens(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    """A freed slot is given back when the server notices the hang-up: retry until then."""
    async with asyncio.timeout(10):
        while True:
            async with open_stream(client, path, headers) as response:
                if response.status_code == 200:
                    return
                assert response.status_code == 429
            await asyncio.sleep(0.05)


async def test_an_owners_third_open_stream_is_refused_with_429_and_a_freed_slot_is_reusable(
    client: httpx.AsyncClient, limited_server: Server, running_job: str
) -> None:
    path = f"{PREFIX}/{running_job}/events"
    async with contextlib.AsyncExitStack() as held:
        for _ in range(MAX_STREAMS):
            response = await held.enter_async_context(open_stream(client, path, ALICE))
            assert response.status_code == 200

        async with open_stream(client, path, ALICE) as third:
            assert third.status_code == 429
            assert "too many open streams" in (await third.aread()).decode()
        async with open_stream(client, f"{PREFIX}/events", ALICE) as all_jobs:
            assert all_jobs.status_code == 429
        # Accepted, then closed with the reason, without a message: a browser sees why.
        refused = await ws_refusal(
            f"{limited_server.ws_url}{PREFIX}/{running_job}/ws?access_token=ka"
        )
        assert refused == (1008, "too many open streams")
        # The limit is per owner: bob may still follow his own jobs.
        async with open_stream(client, f"{PREFIX}/events", BOB) as bobs:
            assert bobs.status_code == 200

    await until_a_stream_opens(client, path, ALICE)


async def test_concurrent_openings_past_the_limit_are_refused_not_broken(
    client: httpx.AsyncClient, running_job: str
) -> None:
    path = f"{PREFIX}/{running_job}/events"
    await until_a_stream_opens(client, path, ALICE)  # slots of earlier tests given back
    async with contextlib.AsyncExitStack() as held:
        responses = await asyncio.gather(
            *(held.enter_async_context(open_stream(client, path, ALICE)) for _ in range(6))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * MAX_STREAMS + [429] * (6 - MAX_STREAMS)
        # The streams that were let in really stream: each replays the job's first events.
        for response in responses:
            if response.status_code == 200:
                async with asyncio.timeout(10):
                    lines = response.aiter_lines()
                    assert (await anext(lines)).startswith("retry: ")


async def test_a_long_poll_wait_above_the_maximum_is_refused_with_422(
    client: httpx.AsyncClient, running_job: str
) -> None:
    too_long = await client.get(
        f"{PREFIX}/{running_job}", params={"wait": MAX_WAIT + 1}, headers=ALICE
    )
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["query", "wait"]

    within = await client.get(f"{PREFIX}/{running_job}", params={"wait": 0.05}, headers=ALICE)
    assert within.status_code == 200
    assert within.json()["state"] == "running"


async def test_streams_of_a_finished_job_replay_and_end_within_the_limit(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, "emit", {"n": 1}, headers=ALICE)
    await until_a_stream_opens(client, f"{PREFIX}/{job_id}/events?after=0", ALICE)
    for _ in range(MAX_STREAMS + 3):  # ended streams give their slots back
        events = await read_sse(client, f"{PREFIX}/{job_id}/events?after=0", headers=ALICE)
        assert events[-1].event == "succeeded"
