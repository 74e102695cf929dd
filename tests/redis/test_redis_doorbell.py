"""The Redis doorbell: a new job wakes one idle worker, not every one; a busy worker
leaves the wake-up to another; and a wake-up that is lost (its taker died) costs at
most the backstop poll, never the job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import pytest
import redis.asyncio as aioredis

from jobwire import JobContext, Jobwire
from jobwire.store.base import Claim, Ring
from jobwire.store.redis import RedisStore
from jobwire.worker.loop import Worker
from tests.redis import server
from tests.support.stores import new

Opener = Callable[..., Awaitable[RedisStore]]

# Long enough that nothing in these tests is found by the backstop poll unless it is
# meant to be.
SLOW_POLL = 60.0


async def blocked_doorbells(stores: Sequence[RedisStore]) -> int:
    """How many of these stores' doorbell connections are blocked in a BLPOP now."""
    names = {store.doorbell_name for store in stores}
    async with aioredis.Redis.from_url(server.URL, decode_responses=True) as admin:
        return sum(
            1
            for client in await admin.client_list()
            if client["name"] in names and client["cmd"] == "blpop" and "b" in client["flags"]
        )


async def until_blocked(stores: Sequence[RedisStore], count: int) -> None:
    async with asyncio.timeout(10):
        while await blocked_doorbells(stores) != count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def ready_key(store: RedisStore, queue: str = "default", name: str = "crunch") -> str:
    return f"{store.prefix}ready:{queue}:{name}"


async def waiting(store: RedisStore, queue: str = "default", name: str = "crunch") -> int:
    async with aioredis.Redis.from_url(server.URL, decode_responses=True) as admin:
        return int(await admin.llen(ready_key(store, queue, name)))  # type: ignore[misc]


# -- the doorbell on its own ---------------------------------------------------------------


async def test_one_new_job_rings_one_of_four_waiting_doorbells(open_store: Opener) -> None:
    stores = [await open_store() for _ in range(4)]
    bells = [store.doorbell(f"w{i}") for i, store in enumerate(stores)]
    waits = [asyncio.ensure_future(bell.wait(["default"], ["crunch"], 30.0)) for bell in bells]
    try:
        await until_blocked(stores, 4)
        await stores[0].enqueue([new()])
        await asyncio.wait(waits, timeout=10, return_when="FIRST_COMPLETED")
        await asyncio.sleep(0.2)  # a second ring, if there were one, would be here by now
        rung = [w for w in waits if w.done()]
        assert len(rung) == 1 and isinstance(rung[0].result(), Ring)
        assert rung[0].result().source == ready_key(stores[0])
        for bell, wait in zip(bells, waits, strict=True):
            if not wait.done():
                await bell.interrupt()
        # Interrupted waits end as timeouts, at once.
        assert [await w for w in waits].count(None) == 3
    finally:
        for bell in bells:
            await bell.close()


async def test_an_interrupt_before_the_wait_begins_ends_it_at_once(open_store: Opener) -> None:
    store = await open_store()
    bell = store.doorbell("w")
    await bell.interrupt()
    async with asyncio.timeout(1):
        assert await bell.wait(["default"], ["crunch"], 30.0) is None
    await bell.close()


async def test_a_wake_up_passed_on_goes_to_another_waiter(open_store: Opener) -> None:
    first, second = await open_store(), await open_store()
    taker, other = first.doorbell("taker"), second.doorbell("other")
    await first.enqueue([new()])
    ring = await taker.wait(["default"], ["crunch"], 5.0)
    assert ring is not None and ring.source is not None
    assert await waiting(first) == 0
    await taker.pass_on(ring)
    assert await other.wait(["default"], ["crunch"], 5.0) == ring
    await taker.close()
    await other.close()


async def test_a_killed_doorbell_connection_answers_look_again_and_reconnects(
    open_store: Opener,
) -> None:
    store = await open_store()
    bell = store.doorbell("w")
    wait = asyncio.ensure_future(bell.wait(["default"], ["crunch"], 30.0))
    await until_blocked([store], 1)
    async with aioredis.Redis.from_url(server.URL, decode_responses=True) as admin:
        [client] = [c for c in await admin.client_list() if c["name"] == store.doorbell_name]
        assert await admin.client_kill_filter(_id=client["id"]) == 1
    async with asyncio.timeout(5):
        assert await wait == Ring(None)
    await store.enqueue([new()])
    async with asyncio.timeout(5):
        ring = await bell.wait(["default"], ["crunch"], 30.0)
    assert ring is not None and ring.source == ready_key(store)
    await bell.close()


# -- what the scripts keep waiting ---------------------------------------------------------


async def test_each_due_job_rings_once_a_job_due_later_once_in_all(open_store: Opener) -> None:
    store = await open_store()
    await store.enqueue([new() for _ in range(3)])
    assert await waiting(store) == 3
    later = time.time() + 3600
    await store.enqueue([new(job="later", scheduled_at=later) for _ in range(2)])
    assert await waiting(store, name="later") == 1
    await store.enqueue([new(job="later", scheduled_at=later)])
    assert await waiting(store, name="later") == 1  # one is waiting already


async def test_the_wake_ups_waiting_are_bounded(open_store: Opener) -> None:
    store = await open_store()
    for _ in range(3):
        await store.enqueue([new() for _ in range(50)])
    assert await waiting(store) == 64


async def test_a_claim_leaves_no_more_wake_ups_than_jobs_still_due(open_store: Opener) -> None:
    store = await open_store()
    jobs = [new() for _ in range(4)]
    await store.enqueue(jobs)
    [claim] = await store.claim("w", ["default"], ["crunch"], 1, 60.0)
    assert await waiting(store) == 3
    await store.cancel(next(job.id for job in jobs if job.id != claim.job.id))
    await store.claim("w", ["default"], ["crunch"], 1, 60.0)
    assert await waiting(store) == 1  # two due: one taken by this claim
    await store.claim("w", ["default"], ["crunch"], 5, 60.0)
    assert await waiting(store) == 0


async def test_a_worker_that_took_all_it_asked_for_leaves_a_wake_up_for_another(
    open_store: Opener,
) -> None:
    store = await open_store()
    await store.enqueue([new() for _ in range(3)])
    async with aioredis.Redis.from_url(server.URL, decode_responses=True) as admin:
        await admin.delete(ready_key(store))  # taken by workers that are claiming now
    await store.claim("w", ["default"], ["crunch"], 2, 60.0)
    assert await waiting(store) == 1


# -- workers -------------------------------------------------------------------------------


def app_with_jobs(url: str, **settings: Any) -> Jobwire:
    app = Jobwire(url, **{"embedded_workers": False, "poll_seconds": SLOW_POLL, **settings})

    @app.job
    async def quick(ctx: JobContext) -> float:
        return time.time()

    @app.job
    async def hold(ctx: JobContext, seconds: float) -> None:
        await asyncio.sleep(seconds)

    return app


class Fleet:
    """Worker apps in this process, each with a store of its own (as separate worker
    processes would have), counting their claims."""

    def __init__(self, url: str, stack: AsyncExitStack) -> None:
        self.url = url
        self.stack = stack
        self.claims: list[str] = []  # the worker of each claim call
        self.stores: list[RedisStore] = []

    async def start(self, **settings: Any) -> Worker:
        app = app_with_jobs(self.url, **settings)
        await self.stack.enter_async_context(app)
        store = app.store
        assert isinstance(store, RedisStore)
        claim = store.claim

        async def counted(worker_id: str, *args: Any) -> list[Claim]:
            self.claims.append(worker_id)
            return await claim(worker_id, *args)

        store.claim = counted  # type: ignore[method-assign]
        worker = await app.start_worker()
        self.stack.push_async_callback(worker.drain, 5.0)
        self.stores.append(store)
        return worker


@pytest.fixture
async def fleet(redis_url: str) -> AsyncIterator[Fleet]:
    async with AsyncExitStack() as stack:
        yield Fleet(redis_url, stack)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Jobwire]:
    async with app_with_jobs(redis_url) as app:
        yield app


async def test_one_new_job_makes_one_of_four_idle_workers_claim(
    fleet: Fleet, client: Jobwire
) -> None:
    workers = [await fleet.start() for _ in range(4)]
    await until_blocked(fleet.stores, 4)
    fleet.claims.clear()
    for _ in range(3):
        handle = await client.enqueue("quick", {})
        await handle.result(timeout=10)
        await until_blocked(fleet.stores, 4)  # back at their doorbells
    await asyncio.sleep(0.2)
    assert len(fleet.claims) == 3, fleet.claims
    assert set(fleet.claims) <= {w.id for w in workers}


async def test_a_full_worker_leaves_the_wake_up_to_an_idle_one(
    fleet: Fleet, client: Jobwire
) -> None:
    busy = await fleet.start(async_concurrency=1)
    await until_blocked(fleet.stores, 1)
    holding = await client.enqueue("hold", {"seconds": 30.0})
    async with asyncio.timeout(10):
        while holding.id not in busy.attempts:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    idle = await fleet.start()
    await until_blocked(fleet.stores, 1)  # the idle one only: the full one is not waiting
    handle = await client.enqueue("quick", {})
    await handle.result(timeout=5)  # well before the busy one's poll
    started = [e for e in await client.store.events(handle.id) if e.type.value == "started"]
    assert started[0].data["worker"] == idle.id
    await holding.cancel()


async def test_a_wake_up_taken_by_a_worker_that_died_costs_only_the_backstop_poll(
    fleet: Fleet, client: Jobwire, prefix: str
) -> None:
    # A taker that BLPOPs first and then dies: Redis hands the wake-up to the client
    # that has waited longest.
    key = f"{prefix}ready:default:quick"
    async with aioredis.Redis.from_url(server.URL, decode_responses=True) as dying:
        taken = asyncio.ensure_future(dying.blpop([key], timeout=10))  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        await fleet.start(poll_seconds=1.0)
        await until_blocked(fleet.stores, 1)
        sent = time.time()
        handle = await client.enqueue("quick", {})
        assert tuple(await taken) == (key, "1")
    started_at = await handle.result(timeout=10)
    assert started_at - sent < 1.0 + 1.0  # the worker's poll, plus room for a slow machine


async def test_a_job_due_later_starts_when_due_not_at_the_next_poll(
    fleet: Fleet, client: Jobwire
) -> None:
    await fleet.start()
    await until_blocked(fleet.stores, 1)
    due = time.time() + 0.5
    handle = await client.enqueue("quick", {}, run_at=due)
    started_at = await handle.result(timeout=10)
    assert due <= started_at < due + 1.0
