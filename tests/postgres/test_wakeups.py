"""Wake-ups between processes: NOTIFY on commit, heard on a LISTEN connection that
reconnects by itself."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from jobwire.feed.hub import Hub
from jobwire.store.base import Notice, NoticeKind
from jobwire.store.postgres import PostgresStore
from tests.postgres.server import server_url
from tests.support.stores import WAIT, Heard, new


async def test_an_enqueue_in_one_store_wakes_a_worker_waiting_in_another(
    first: PostgresStore, second: PostgresStore
) -> None:
    hub = Hub(second)
    try:
        with hub.watch_queues(["cpu"]) as watch:
            await first.enqueue([new(queue="cpu")])
            assert await watch.wait(WAIT), "the waiting worker was not woken"
    finally:
        hub.close()


async def test_a_cancel_request_in_one_store_reaches_the_worker_holding_the_job_in_another(
    first: PostgresStore, second: PostgresStore
) -> None:
    await second.enqueue([new()])
    [claim] = await second.claim("w2", ["default"], ["crunch"], 1, 600.0)
    hub = Hub(second)
    asked = asyncio.Event()

    def on_cancel(job_id: str) -> None:
        if job_id == claim.job.id:
            asked.set()

    try:
        with hub.on_cancel(on_cancel):
            await first.cancel(claim.job.id)
            await asyncio.wait_for(asked.wait(), WAIT)
    finally:
        hub.close()


async def test_a_store_hears_its_own_changes_once_not_again_from_listen(
    first: PostgresStore, second: PostgresStore
) -> None:
    heard = Heard()
    first.add_listener(heard)
    mine, theirs = new(), new()
    await first.enqueue([mine])
    assert heard.count(Notice(NoticeKind.JOB, mine.id)) == 1  # at commit, in-process
    await second.enqueue([theirs])
    # NOTIFYs arrive in commit order: once this one is heard, so was the echo of ours.
    await heard.wait_for(Notice(NoticeKind.JOB, theirs.id))
    assert heard.count(Notice(NoticeKind.JOB, mine.id)) == 1


async def test_the_listener_reconnects_after_its_connection_is_killed_and_wake_ups_resume(
    first: PostgresStore, second: PostgresStore
) -> None:
    generation, pid = second.listener_generation, second.listener_pid
    assert generation == 1 and pid is not None
    admin: asyncpg.Connection[Any] = await asyncpg.connect(server_url())
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    assert await asyncio.wait_for(second.wait_listening(generation), WAIT) > generation
    assert second.listener_pid not in (None, pid)
    heard = Heard()
    second.add_listener(heard)
    job = new(queue="io")
    await first.enqueue([job])
    await heard.wait_for(Notice(NoticeKind.JOB, job.id))
    await second.ping()


async def test_a_large_batch_is_announced_in_several_notify_payloads(
    first: PostgresStore, second: PostgresStore
) -> None:
    heard = Heard()
    second.add_listener(heard)
    batch = [new() for _ in range(600)]  # ~25 KB of notices: over one payload's 8000 bytes
    await first.enqueue(batch)
    await heard.wait_for(Notice(NoticeKind.JOB, batch[-1].id))
    assert {n.key for n in heard.notices if n.kind is NoticeKind.JOB} == {b.id for b in batch}
