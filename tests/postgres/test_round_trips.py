"""The writes between a submit and its job's start: one statement each, counted at the
driver, and what those statements must still do (schema upgrade, wake-ups, the feed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from jobwire.model import State
from jobwire.store.base import Notice, NoticeKind
from jobwire.store.postgres import SCHEMA_VERSION, PostgresStore
from tests.postgres.server import server_url
from tests.support.stores import Heard, new

LEASE = 600.0


class Sent:
    """Every statement the driver sends to the server, from any connection: each is
    one round trip (asyncpg sends one statement per exchange, prepared once)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []
        for name in ("execute", "fetch", "fetchrow", "fetchval", "executemany"):
            original = getattr(asyncpg.Connection, name)
            monkeypatch.setattr(asyncpg.Connection, name, self._counting(original))

    def _counting(self, original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def counted(conn: asyncpg.Connection[Any], query: str, *args: Any, **kw: Any) -> Any:
            if query.strip() != "SELECT 1":  # the listener's health check
                self.statements.append(query)
            return await original(conn, query, *args, **kw)

        return counted

    async def during(self, action: Awaitable[Any]) -> list[str]:
        self.statements.clear()
        await action
        return list(self.statements)


async def test_an_enqueue_is_one_statement_and_a_claim_one(
    first: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Warmed up: the first use of a statement on a connection also prepares it.
    await first.enqueue([new()])
    await first.claim("w1", ["default"], ["crunch"], 1, LEASE)
    sent = Sent(monkeypatch)

    enqueue = await sent.during(first.enqueue([new()]))
    assert len(enqueue) == 1, enqueue  # jobwire_insert_jobs, which reads the clock
    assert "jobwire_insert_jobs" in enqueue[0]
    hooked = new(options={"webhook": {"url": "https://hooks.example.com/", "events": None}})
    with_hook = await sent.during(first.enqueue([hooked]))
    assert len(with_hook) == 2, with_hook  # the clock first: deliveries hold event times
    claim = await sent.during(first.claim("w1", ["default"], ["crunch"], 10, LEASE))
    assert len(claim) == 1, claim  # jobwire_claim, in autocommit
    idle = await sent.during(first.claim("w1", ["default"], ["crunch"], 10, LEASE))
    assert len(idle) == 1, idle  # nothing due: the same one statement


async def test_a_claim_made_in_sql_is_committed_and_fenced_as_one_made_in_python(
    first: PostgresStore, second: PostgresStore
) -> None:
    [enqueued] = await first.enqueue([new()])
    [claim] = await first.claim("w1", ["default"], ["crunch"], 5, LEASE)
    job = claim.job
    assert (job.id, job.state, job.attempts, job.worker_id) == (
        enqueued.job.id,
        State.RUNNING,
        1,
        "w1",
    )
    assert job.claim_token == claim.token and len(claim.token) == 32
    assert job.lease_expires_at == pytest.approx(job.started_at + LEASE)  # type: ignore[operator]
    assert await second.get(job.id) == job
    [queued, started] = await second.events(job.id)
    assert (started.seq, started.type.value, started.at) == (2, "started", job.started_at)
    assert started.data == {"attempt": 1, "worker": "w1"}
    assert queued.cursor is not None and started.cursor is not None
    assert started.cursor > queued.cursor
    assert [e.seq for e in await second.feed(after=queued.cursor)] == [2]
    done = await second.finish(job.id, claim.token, "ok")
    assert done.state is State.SUCCEEDED


async def test_a_claim_of_many_jobs_wakes_their_followers_in_several_notify_payloads(
    first: PostgresStore, second: PostgresStore
) -> None:
    batch = [new() for _ in range(400)]  # ~17 KB of notices: over one payload's 8000 bytes
    await first.enqueue(batch)
    heard = Heard()
    second.add_listener(heard)
    claims = await first.claim("w1", ["default"], ["crunch"], 400, LEASE)
    assert len(claims) == 400
    await heard.wait_for(Notice(NoticeKind.JOB, claims[-1].job.id))
    assert {n.key for n in heard.notices if n.kind is NoticeKind.JOB} >= {b.id for b in batch}


async def test_a_claim_of_a_job_whose_cancellation_was_requested_wakes_its_holder(
    first: PostgresStore, second: PostgresStore, schema: str
) -> None:
    [enqueued] = await first.enqueue([new()])
    conn: asyncpg.Connection[Any] = await asyncpg.connect(server_url())
    try:  # a queued job with the flag set: not made by jobwire, but the model allows it
        await conn.execute(
            f'UPDATE "{schema}".jobwire_jobs SET cancel_requested = true WHERE id = $1',
            enqueued.job.id,
        )
    finally:
        await conn.close()
    heard = Heard()
    second.add_listener(heard)
    [claim] = await first.claim("w1", ["default"], ["crunch"], 1, LEASE)
    assert claim.job.cancel_requested
    await heard.wait_for(Notice(NoticeKind.CANCEL, claim.job.id))


async def test_a_schema_at_version_2_is_upgraded_by_stores_opening_at_once(
    pg_url: str, schema: str
) -> None:
    store = PostgresStore.from_url(pg_url)
    await store.open()
    await store.close()
    conn: asyncpg.Connection[Any] = await asyncpg.connect(server_url())
    try:  # as jobwire before version 3 left it
        await conn.execute(
            f'DROP FUNCTION "{schema}".jobwire_claim; '
            f'DROP FUNCTION "{schema}".jobwire_insert_jobs; '
            f'DROP FUNCTION "{schema}".jobwire_announce; '
            f"UPDATE \"{schema}\".jobwire_meta SET value = '2' WHERE key = 'schema_version'"
        )
        stores = [PostgresStore.from_url(pg_url) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            for opened in stores:
                await opened.ping()
            [enqueued] = await stores[0].enqueue([new()])
            [claim] = await stores[1].claim("w1", ["default"], ["crunch"], 1, LEASE)
            assert claim.job.id == enqueued.job.id
        finally:
            await asyncio.gather(*(s.close() for s in stores))
        version = await conn.fetchval(
            f"SELECT value FROM \"{schema}\".jobwire_meta WHERE key = 'schema_version'"
        )
        assert int(version) == SCHEMA_VERSION >= 3  # through 3 to the current version
        functions = await conn.fetch(
            "SELECT p.proname FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace"
            " WHERE n.nspname = $1",
            schema,
        )
        assert {"jobwire_announce", "jobwire_insert_jobs", "jobwire_claim"} <= {
            row[0] for row in functions
        }
    finally:
        await conn.close()


async def test_jobs_whose_times_are_the_database_clock_read_back_as_they_were_returned(
    first: PostgresStore, second: PostgresStore
) -> None:
    before = time.time()
    later = before + 3600.0
    enqueued = await first.enqueue([new(), new(scheduled_at=later), new(queue='q"x\\')])
    after = time.time()
    now = enqueued[0].job.created_at
    assert before - 5 <= now <= after + 5  # the server's clock: the same machine here
    for item in enqueued:
        job = item.job
        assert item.created and job.created_at == now
        assert await second.get(job.id) == job
        [queued] = await second.events(job.id)
        assert (queued.seq, queued.type.value, queued.at) == (1, "queued", now)
        assert queued.data == {"queue": job.queue, "scheduled_at": job.scheduled_at}
    assert enqueued[0].job.scheduled_at == now == enqueued[2].job.scheduled_at
    assert enqueued[1].job.scheduled_at == later
    claims = await second.claim("w1", ["default", 'q"x\\'], ["crunch"], 10, LEASE)
    assert {c.job.id for c in claims} == {enqueued[0].job.id, enqueued[2].job.id}
