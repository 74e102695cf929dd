"""Rate limits hold across workers: four workers, each with its own connections to one
PostgreSQL schema or one Redis prefix, never start a limited job more often than its
rate, nor run more of a limited queue at once than its concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest

from jobwire import JobContext, Jobwire, Settings, State
from jobwire.store.base import Store

RATE, PERIOD = 5, 1.0
CONCURRENCY = 3
LEASE = 2.0  # shorter than a `hold` job: its permit must be renewed with the lease
START_DELAY = 0.2  # the most a job's start may trail its permit on this (loaded) host
WORKERS = 4

registry = Jobwire("memory://")  # only the jobs; each worker below has its own store
registry.limit_queue("emails", concurrency=CONCURRENCY)

STARTS: list[float] = []
RUNNING = {"now": 0, "most": 0}
HOLDING = {"now": 0, "most": 0}


@registry.job(rate_limit=(RATE, PERIOD))
async def ping(ctx: JobContext, n: int) -> int:
    STARTS.append(time.time())
    return n


@registry.job(queue="emails")
async def send(ctx: JobContext, n: int) -> int:
    RUNNING["now"] += 1
    RUNNING["most"] = max(RUNNING["most"], RUNNING["now"])
    try:
        await asyncio.sleep(0.2)
    finally:
        RUNNING["now"] -= 1
    return n


@registry.job(concurrency=1)
async def hold(ctx: JobContext, seconds: float) -> float:
    HOLDING["now"] += 1
    HOLDING["most"] = max(HOLDING["most"], HOLDING["now"])
    try:
        await asyncio.sleep(seconds)
    finally:
        HOLDING["now"] -= 1
    return seconds


def _postgresql() -> tuple[Callable[[], Store], Callable[[], None]]:
    from jobwire.store.postgres import PostgresStore
    from tests.postgres.server import drop_schema, new_schema, server_url

    url, schema = server_url(), new_schema()
    # A few connections each: the server is shared with other test runs.
    return (
        lambda: PostgresStore(url, schema=schema, max_size=3),
        lambda: asyncio.run(drop_schema(schema)),
    )


def _redis() -> tuple[Callable[[], Store], Callable[[], None]]:
    from tests.redis.server import delete_keys, new_prefix, new_store

    prefix = new_prefix()
    return lambda: new_store(prefix), lambda: delete_keys(prefix)


@pytest.fixture(params=["postgresql", "redis"])
async def fleet(request: pytest.FixtureRequest) -> AsyncIterator[list[Jobwire]]:
    """Four apps, each running one worker, over one store (separate connections)."""
    make, drop = {"postgresql": _postgresql, "redis": _redis}[request.param]()
    STARTS.clear()
    RUNNING.update(now=0, most=0)
    HOLDING.update(now=0, most=0)
    apps = []
    for _ in range(WORKERS):
        app = Jobwire(
            store=make(),
            settings=Settings(
                url="memory://", queues=("default", "emails"), poll_seconds=0.5, lease_seconds=LEASE
            ),
        )
        app.registry = dict(registry.registry)
        app.queue_limits = dict(registry.queue_limits)
        apps.append(app)
    try:
        async with contextlib.AsyncExitStack() as stack:
            for app in apps:
                await stack.enter_async_context(app.lifespan())
            yield apps
    finally:
        await asyncio.to_thread(drop)


def most_in_any_window(times: list[float], width: float) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= width:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_four_workers_start_a_rate_limited_job_no_more_often_than_its_rate(
    fleet: list[Jobwire],
) -> None:
    jobs = 25
    handles = [await fleet[i % WORKERS].enqueue("ping", {"n": i}) for i in range(jobs)]
    results = await asyncio.gather(*(h.result(timeout=60) for h in handles))

    assert sorted(results) == list(range(jobs))
    assert len(STARTS) == jobs  # each ran once
    # The store grants at most RATE permits per PERIOD; the job's own code starts after
    # its permit by the answer's trip and the launch (milliseconds; more on a loaded
    # host), so the starts it records may bunch by that much: the documented burst.
    assert most_in_any_window(STARTS, PERIOD - START_DELAY) <= RATE
    # The limit held them back: the last window's permits came (jobs/RATE - 1) periods on.
    assert max(STARTS) - min(STARTS) >= (jobs / RATE - 1) * PERIOD - START_DELAY
    views = [await fleet[0].get(h.id) for h in handles]
    assert all(v is not None and v.state is State.SUCCEEDED and v.attempts == 1 for v in views)


async def test_four_workers_never_run_more_of_a_limited_queue_at_once_than_its_concurrency(
    fleet: list[Jobwire],
) -> None:
    jobs = 24
    handles = [await fleet[i % WORKERS].enqueue("send", {"n": i}) for i in range(jobs)]
    results = await asyncio.gather(*(h.result(timeout=60) for h in handles))

    assert sorted(results) == list(range(jobs))
    assert RUNNING["most"] == CONCURRENCY  # reached, never passed
    views = [await fleet[0].get(h.id) for h in handles]
    assert all(v is not None and v.attempts == 1 for v in views)  # refusals are not charged


async def test_a_permit_held_longer_than_a_lease_is_renewed_with_it(fleet: list[Jobwire]) -> None:
    seconds = LEASE * 1.5
    handles = [await fleet[i].enqueue("hold", {"seconds": seconds}) for i in range(2)]
    began = time.monotonic()
    assert await asyncio.gather(*(h.result(timeout=60) for h in handles)) == [seconds] * 2
    assert HOLDING["most"] == 1  # the second waited for the first, past the first's lease
    assert time.monotonic() - began >= 2 * seconds - 0.1
