"""The store-wide feed never skips an event, however transactions interleave."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from jobwire.feed.follow import follow_all
from jobwire.feed.hub import Hub
from jobwire.feed.results import resolve_results
from jobwire.model import Event, EventDraft, EventType
from jobwire.store.postgres import PostgresStore
from tests.postgres.server import server_url
from tests.support.stores import WAIT, new


async def test_events_committed_after_a_running_writer_wait_for_it_and_follow_it_in_order(
    first: PostgresStore, second: PostgresStore, app_conn: asyncpg.Connection[Any]
) -> None:
    early, late = new(), new()
    async with app_conn.transaction():
        await first.enqueue([early], connection=app_conn)  # a writer still running…
        await second.enqueue([late])  # …and one that began after it, committed
        # A reader must not return the later cursor: the earlier one may still come.
        assert await first.feed(after=0) == []
        assert await first.last_cursor() == 0
    feed = await second.feed(after=0)
    assert [e.job_id for e in feed] == [early.id, late.id]
    assert feed[0].cursor < feed[1].cursor
    assert await first.last_cursor() == feed[-1].cursor


async def test_transactions_that_append_no_events_do_not_hold_the_feed_back(
    first: PostgresStore, app_conn: asyncpg.Connection[Any], schema: str
) -> None:
    async with app_conn.transaction():
        await app_conn.execute(f'INSERT INTO "{schema}".orders VALUES (1)')  # has an xid
        job = new()
        await first.enqueue([job])
        assert [e.job_id for e in await first.feed(after=0)] == [job.id]


async def test_a_follower_of_the_feed_sees_every_event_of_concurrent_writers_once_in_order(
    first: PostgresStore, second: PostgresStore
) -> None:
    writers, jobs_each = 6, 15

    async def writer(store: PostgresStore, n: int) -> int:
        appended = 0
        for _ in range(jobs_each):
            [enqueued] = await store.enqueue([new(job=f"w{n}")])
            [claim] = await store.claim(f"w{n}", ["default"], [f"w{n}"], 1, 600.0)
            drafts = [EventDraft(EventType.PROGRESS, {"current": i}) for i in range(3)]
            await store.report(claim.job.id, claim.token, drafts)
            await store.finish(enqueued.job.id, claim.token, n)
            appended += 1 + 1 + 3 + 1
        return appended

    expected = writers * jobs_each * 6
    hub = Hub(first)
    seen: list[Event] = []

    async def follower() -> None:
        async for event in follow_all(first, hub, after=0):
            assert event is not None
            seen.append(event)
            if len(seen) == expected:
                return

    try:
        following = asyncio.create_task(follower())
        stores = [first, second]
        counts = await asyncio.gather(*(writer(stores[n % 2], n) for n in range(writers)))
        assert sum(counts) == expected
        await asyncio.wait_for(following, WAIT)
    finally:
        hub.close()
    cursors = [e.cursor for e in seen]
    assert cursors == sorted(set(cursors)), "the feed went back or repeated itself"
    # Followers see succeeded events with their results put back (feed.results).
    assert seen == await resolve_results(second, await second.feed(after=0, limit=expected + 1))
    by_job: dict[str, list[int]] = {}
    for event in seen:
        by_job.setdefault(event.job_id, []).append(event.seq)
    assert all(seqs == list(range(1, 7)) for seqs in by_job.values())


async def test_the_feed_horizon_ignores_writers_of_other_schemas(
    first: PostgresStore,
) -> None:
    other = PostgresStore(server_url(), schema=f"{first.schema}_other")
    await other.open()
    conn: asyncpg.Connection[Any] = await asyncpg.connect(server_url())
    try:
        async with conn.transaction():
            await other.enqueue([new()], connection=conn)  # running, in the other schema
            job = new()
            await first.enqueue([job])
            assert [e.job_id for e in await first.feed(after=0)] == [job.id]
    finally:
        await conn.close()
        await other.close()
        drop = await asyncpg.connect(server_url())
        await drop.execute(f'DROP SCHEMA "{first.schema}_other" CASCADE')
        await drop.close()
