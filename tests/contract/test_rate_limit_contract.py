"""The store's part in rate limits, on every engine: permits taken atomically under
every limit of a job (all or none), a sliding window of starts, holders running at once
whose permits expire with their lease, and a job handed back due later."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from jobwire.model import EventType, State
from jobwire.store.base import Store
from jobwire.throttle import CONCURRENCY_RECHECK_SECONDS, Limit
from tests.contract.test_store_contract import claim_all, claim_one

LEASE = 30.0


def near(at: float) -> Any:
    """A store dates a grant when it is made (a wait for its turn moves it on)."""
    return pytest.approx(at, abs=0.5)


async def take(store: Store, limits: list[Limit], holder: str, now: float) -> float | None:
    return await store.acquire_permit(limits, holder, now + LEASE, now)


async def test_concurrent_acquirers_get_no_more_starts_than_the_rate_in_one_window(
    store: Store,
) -> None:
    limit = Limit("job:send", rate=5, period=10.0)
    now = time.time()
    answers = await asyncio.gather(*(take(store, [limit], f"h{i}", now) for i in range(20)))
    assert answers.count(None) == 5
    # Refused until the oldest start in the window leaves it.
    assert all(a == near(now + 10.0) for a in answers if a is not None)
    assert await take(store, [limit], "late", now + 9.5) == near(now + 10.0)
    later = await asyncio.gather(*(take(store, [limit], f"g{i}", now + 11.0) for i in range(20)))
    assert later.count(None) == 5  # the next window grants the rate again


async def test_the_window_slides_start_by_start(store: Store) -> None:
    limit = Limit("queue:emails", rate=3, period=10.0)
    t = time.time()
    for i in range(3):
        assert await take(store, [limit], f"h{i}", t + i) is None
    assert await take(store, [limit], "x", t + 5) == near(t + 10)  # the start at t leaves at t + 10
    assert await take(store, [limit], "y", t + 10.2) is None
    assert await take(store, [limit], "z", t + 10.6) == near(t + 11)


async def test_concurrent_acquirers_never_hold_more_than_the_concurrency(store: Store) -> None:
    limit = Limit("job:render", concurrency=3)
    now = time.time()
    answers = await asyncio.gather(*(take(store, [limit], f"h{i}", now) for i in range(12)))
    granted = [f"h{i}" for i, a in enumerate(answers) if a is None]
    assert len(granted) == 3
    assert all(
        a is not None and now < a <= now + CONCURRENCY_RECHECK_SECONDS + 0.5
        for a in answers
        if a is not None
    )
    assert await take(store, [limit], "late", now + 1) is not None
    await store.release_permit([limit.key], granted[0])
    assert await take(store, [limit], "late", now + 1) is None
    assert await take(store, [limit], "later", now + 1) is not None
    await store.release_permit([limit.key], "never-held")  # no error


async def test_a_dead_holders_permit_expires_with_its_lease_unless_renewed(store: Store) -> None:
    limit = Limit("job:render", concurrency=1)
    now = time.time()
    assert await store.acquire_permit([limit], "dead", now + 5, now) is None
    refused = await take(store, [limit], "next", now + 1)
    assert refused == near(now + 1 + CONCURRENCY_RECHECK_SECONDS)
    assert await take(store, [limit], "next", now + 5.5) is None  # the dead one's ran out

    assert await store.acquire_permit([limit], "alive", now + 15, now + 10) is not None
    await store.release_permit([limit.key], "next")
    assert await store.acquire_permit([limit], "alive", now + 15, now + 10) is None
    await store.renew_permits([(limit.key, "alive")], now + 40)
    assert await take(store, [limit], "other", now + 20) is not None  # renewed: still held
    await store.renew_permits([(limit.key, "gone")], now + 500)  # not held: stays gone
    assert await take(store, [limit], "other", now + 40.5) is None


async def test_a_permit_is_taken_under_every_limit_or_none(store: Store) -> None:
    job = Limit("job:send", rate=2, period=60.0)
    queue = Limit("queue:emails", concurrency=1)
    now = time.time()
    assert await take(store, [job, queue], "a", now) is None
    assert await take(store, [job, queue], "b", now + 1) is not None  # the queue is full
    await store.release_permit([queue.key], "a")
    # b's refusal counted no start: the window has room for b, then none.
    assert await take(store, [job, queue], "b", now + 2) is None
    await store.release_permit([queue.key], "b")
    assert await take(store, [job, queue], "c", now + 3) == near(now + 60.0)


async def test_taking_again_for_a_holder_does_not_count_it_twice(store: Store) -> None:
    limit = Limit("job:render", concurrency=2)
    now = time.time()
    assert await take(store, [limit], "a", now) is None
    assert await take(store, [limit], "a", now) is None
    assert await take(store, [limit], "b", now) is None
    assert await take(store, [limit], "c", now) is not None


async def test_a_job_handed_back_due_later_is_not_charged_nor_claimed_before_then(
    store: Store,
) -> None:
    claim = await claim_one(store)
    due_at = time.time() + 60
    job = await store.release(claim.job.id, claim.token, due_at)
    assert (job.state, job.attempts, job.scheduled_at) == (State.QUEUED, 0, due_at)
    assert (job.claim_token, job.worker_id) == (None, None)
    assert await store.get(job.id) == job
    last = (await store.events(job.id))[-1]
    assert last.type is EventType.QUEUED and last.data.get("released") is True
    assert await claim_all(store) == []
    assert await store.next_due([job.queue], [job.job]) == due_at


async def test_a_job_handed_back_without_a_time_is_due_at_once(store: Store) -> None:
    claim = await claim_one(store)
    job = await store.release(claim.job.id, claim.token)
    assert job.state is State.QUEUED and job.scheduled_at <= time.time()
    assert await claim_all(store) == [job.id]
