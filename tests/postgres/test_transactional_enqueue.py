"""Transactional enqueue: a job written in the application's own transaction exists, and
workers hear of it, if and only if that transaction commits."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeAlias

import asyncpg
import pytest

from jobwire import Jobwire
from jobwire.errors import IdempotencyConflict
from jobwire.model import EventType, State
from jobwire.store.base import ListQuery, Notice, NoticeKind
from jobwire.store.postgres import PostgresStore
from tests.support.stores import Heard, new

Conn: TypeAlias = "asyncpg.Connection[Any]"


class Rollback(Exception):
    pass


async def test_a_job_enqueued_in_a_committed_transaction_exists_and_wakes_workers_on_commit(
    first: PostgresStore, second: PostgresStore, app_conn: Conn, schema: str
) -> None:
    heard = Heard()
    second.add_listener(heard)  # a worker in another process
    job = new(queue="cpu")
    async with app_conn.transaction():
        await app_conn.execute(f'INSERT INTO "{schema}".orders VALUES (1)')
        [enqueued] = await first.enqueue([job], connection=app_conn)
        assert enqueued.created and enqueued.job.state is State.QUEUED
        # Not committed: nobody else sees it, and nobody was woken for it.
        assert await first.get(job.id) is None
        assert await second.claim("w2", ["cpu"], ["crunch"], 10, 60.0) == []
        assert Notice(NoticeKind.JOBS, "cpu") not in heard.notices
    await heard.wait_for(Notice(NoticeKind.JOBS, "cpu"))
    assert Notice(NoticeKind.JOB, job.id) in heard.notices
    assert await second.get(job.id) == enqueued.job
    [claim] = await second.claim("w2", ["cpu"], ["crunch"], 10, 60.0)
    assert claim.job.id == job.id
    assert [e.type for e in await first.events(job.id)] == [EventType.QUEUED, EventType.STARTED]


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_exists(
    first: PostgresStore, second: PostgresStore, app_conn: Conn, schema: str
) -> None:
    job = new()
    with pytest.raises(Rollback):
        async with app_conn.transaction():
            await app_conn.execute(f'INSERT INTO "{schema}".orders VALUES (1)')
            await first.enqueue([job], connection=app_conn)
            raise Rollback
    assert await first.get(job.id) is None
    assert await first.events(job.id) == []
    assert await second.claim("w2", ["default"], ["crunch"], 10, 60.0) == []
    assert (await first.list(ListQuery())).items == []
    assert await first.feed(after=0) == []
    # The store and the application's connection both work on.
    assert await app_conn.fetchval(f'SELECT count(*) FROM "{schema}".orders') == 0
    [enqueued] = await first.enqueue([new()])
    assert enqueued.created


def greeter(store: PostgresStore) -> Jobwire:
    jobs = Jobwire(store=store, embedded_workers=False)

    @jobs.job
    async def greet(name: str) -> str:
        return f"hello {name}"

    return jobs


async def test_jobs_enqueued_through_the_python_api_inside_store_transaction_commit_with_it(
    first: PostgresStore, second: PostgresStore, app_conn: Conn, schema: str
) -> None:
    jobs = greeter(first)
    heard = Heard()
    second.add_listener(heard)
    async with jobs:
        async with app_conn.transaction(), first.transaction(app_conn):
            await app_conn.execute(f'INSERT INTO "{schema}".orders VALUES (7)')
            handle = await jobs.enqueue("greet", {"name": "ada"})
            again = await jobs.spec("greet").enqueue(name="bob")
            assert await first.get(handle.id) is None
        # Outside the block, enqueues go through the store's own connections again.
        later = await jobs.enqueue("greet", {"name": "cy"})
        await heard.wait_for(Notice(NoticeKind.JOB, again.id))
        for job_id in (handle.id, again.id, later.id):
            stored = await second.get(job_id)
            assert stored is not None and stored.state is State.QUEUED
        claims = await second.claim("w2", ["default"], ["greet"], 10, 60.0)
        assert {c.job.id for c in claims} == {handle.id, again.id, later.id}


async def test_jobs_enqueued_inside_jobs_transaction_roll_back_with_the_applications_transaction(
    first: PostgresStore, app_conn: Conn, schema: str
) -> None:
    jobs = greeter(first)
    async with jobs:
        with pytest.raises(Rollback):
            async with app_conn.transaction(), jobs.transaction(app_conn):
                await app_conn.execute(f'INSERT INTO "{schema}".orders VALUES (7)')
                handle = await jobs.enqueue("greet", {"name": "ada"})
                raise Rollback
        assert await first.get(handle.id) is None
        assert await first.claim("w1", ["default"], ["greet"], 10, 60.0) == []


async def test_a_refused_enqueue_leaves_the_applications_transaction_usable(
    first: PostgresStore, app_conn: Conn, schema: str
) -> None:
    await first.enqueue([new(idempotency_key="k", fingerprint="f")])
    other = new(idempotency_key="k", fingerprint="g")
    async with app_conn.transaction():
        await app_conn.execute(f'INSERT INTO "{schema}".orders VALUES (1)')
        with pytest.raises(IdempotencyConflict):
            await first.enqueue([other], connection=app_conn)
        await app_conn.execute(f'INSERT INTO "{schema}".orders VALUES (2)')
    assert await app_conn.fetchval(f'SELECT count(*) FROM "{schema}".orders') == 2
    assert await first.get(other.id) is None


async def test_an_idempotent_replay_reads_the_job_back_through_the_applications_json_codec(
    first: PostgresStore, app_conn: Conn
) -> None:
    await app_conn.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )
    [stored] = await first.enqueue(
        [new(args={"n": [1, 2]}, idempotency_key="k", fingerprint="f", options={"o": 1})]
    )
    async with app_conn.transaction():
        [again] = await first.enqueue(
            [new(idempotency_key="k", fingerprint="f")], connection=app_conn
        )
    assert not again.created and again.job == stored.job
    [created] = await first.enqueue([new(args={"x": {"y": None}})], connection=app_conn)
    assert await first.get(created.job.id) == created.job


async def test_an_open_application_transaction_holds_up_no_other_writer_and_is_counted(
    first: PostgresStore, second: PostgresStore, app_conn: Conn, schema: str
) -> None:
    async with app_conn.transaction():
        await first.enqueue([new()], connection=app_conn)
        # Other processes enqueue and claim jobs of the same name while it stays open:
        # none of them may wait for it (each picks a counter shard at random).
        async with asyncio.timeout(20):
            for _ in range(40):
                await second.enqueue([new()])
            claims = await second.claim("w2", ["default"], ["crunch"], 40, 60.0)
        assert len(claims) == 40
    counts = (await second.counts())["default"]
    assert (counts[State.QUEUED], counts[State.RUNNING]) == (1, 40)
    await second.reap()  # folds what the application's transaction counted
    pending = await app_conn.fetchval(f'SELECT count(*) FROM "{schema}".jobwire_stats_pending')
    assert pending == 0
    assert (await first.counts())["default"] == counts
