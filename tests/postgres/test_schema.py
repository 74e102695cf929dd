"""Opening: the schema is created once, whoever comes first, versioned and kept apart."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from jobwire.errors import ConfigError, InvalidTransition, StoreUnavailable
from jobwire.model import EventType, State
from jobwire.settings import Settings
from jobwire.store import store_from_url
from jobwire.store.postgres import SCHEMA_VERSION, PostgresStore
from jobwire.throttle import Limit
from tests.postgres.server import server_url
from tests.support.stores import new


async def sql(query: str, *args: Any) -> Any:
    conn: asyncpg.Connection[Any] = await asyncpg.connect(server_url())
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def test_several_stores_opening_a_new_schema_at_once_all_open_it(
    pg_url: str, schema: str
) -> None:
    stores = [PostgresStore.from_url(pg_url) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        for store in stores:
            await store.ping()
        [enqueued] = await stores[0].enqueue([new()])
        assert await stores[3].get(enqueued.job.id) == enqueued.job
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    tables = await sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
    )
    assert {row[0] for row in tables} == {
        "jobwire_meta", "jobwire_jobs", "jobwire_events", "jobwire_idempotency",
        "jobwire_deliveries", "jobwire_stats", "jobwire_stats_pending", "jobwire_workers",
        "jobwire_job_names", "jobwire_schedules", "jobwire_workflows",
        "jobwire_rate_starts", "jobwire_permits",
    }  # fmt: skip


async def test_jobs_and_their_events_survive_closing_and_reopening(pg_url: str) -> None:
    store = PostgresStore.from_url(pg_url)
    await store.open()
    [enqueued] = await store.enqueue([new(idempotency_key="k", fingerprint="f")])
    [claim] = await store.claim("w1", ["default"], ["crunch"], 1, 600.0)
    await store.close()

    reopened = PostgresStore.from_url(pg_url)
    await reopened.open()
    try:
        assert await reopened.get(claim.job.id) == claim.job
        assert [e.type for e in await reopened.events(claim.job.id)] == [
            EventType.QUEUED,
            EventType.STARTED,
        ]
        [again] = await reopened.enqueue([new(idempotency_key="k", fingerprint="f")])
        assert not again.created and again.job.id == enqueued.job.id
        done = await reopened.finish(claim.job.id, claim.token, "ok")
        assert done.state is State.SUCCEEDED
        assert (await reopened.feed(after=0))[-1].type is EventType.SUCCEEDED
    finally:
        await reopened.close()


async def test_ping_refuses_a_schema_whose_version_is_not_current(
    first: PostgresStore, schema: str
) -> None:
    await sql(f"UPDATE \"{schema}\".jobwire_meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(StoreUnavailable, match="schema version is 0"):
        await first.ping()


async def test_a_schema_from_a_newer_jobwire_is_not_opened(pg_url: str, schema: str) -> None:
    store = PostgresStore.from_url(pg_url)
    await store.open()
    await store.close()
    newer = str(SCHEMA_VERSION + 1)
    await sql(
        f"UPDATE \"{schema}\".jobwire_meta SET value = $1 WHERE key = 'schema_version'", newer
    )
    with pytest.raises(StoreUnavailable, match="newer than this jobwire"):
        await PostgresStore.from_url(pg_url).open()


async def test_a_server_that_does_not_answer_raises_store_unavailable() -> None:
    store = PostgresStore("postgresql://nobody@127.0.0.1:1/none", connect_timeout=5)
    with pytest.raises(StoreUnavailable, match="cannot connect to PostgreSQL"):
        await store.open()
    with pytest.raises(StoreUnavailable, match="not open"):
        await store.get("x")


def test_a_postgresql_url_makes_a_postgres_store_with_the_pool_of_the_settings() -> None:
    url = "postgresql://app:secret@db.internal:5433/jobs?schema=work&sslmode=disable"
    store = store_from_url(url, Settings(postgres_pool_min=2, postgres_pool_max=7))
    assert isinstance(store, PostgresStore)
    assert store.schema == "work" and (store.min_size, store.max_size) == (2, 7)
    assert store.dsn == "postgresql://app:secret@db.internal:5433/jobs?sslmode=disable"
    assert "secret" not in repr(store)
    assert isinstance(store_from_url("postgres://h/db"), PostgresStore)


def test_pool_bounds_and_schema_names_are_validated() -> None:
    with pytest.raises(ConfigError, match="JOBWIRE_POSTGRES_POOL_MIN"):
        Settings(postgres_pool_min=5, postgres_pool_max=2)
    with pytest.raises(ConfigError, match="schema"):
        PostgresStore("postgresql://h/db", schema="")
    with pytest.raises(ConfigError, match="min_size"):
        PostgresStore("postgresql://h/db", min_size=0)


async def test_a_job_id_enqueued_twice_is_refused_and_the_batch_is_not_stored(
    first: PostgresStore,
) -> None:
    [stored] = await first.enqueue([new()])
    other = new()
    with pytest.raises(InvalidTransition, match="enqueue it twice"):
        await first.enqueue([other, new(id=stored.job.id)])
    assert await first.get(other.id) is None
    assert await first.get(stored.job.id) == stored.job


async def test_a_schema_of_version_1_is_migrated_with_counts_of_the_jobs_it_holds(
    pg_url: str, schema: str
) -> None:
    store = PostgresStore.from_url(pg_url)
    await store.open()
    await store.enqueue([new(), new(), new(queue="cpu")])
    await store.close()
    await sql(f'DROP TABLE "{schema}".jobwire_stats, "{schema}".jobwire_workers')
    await sql(f"UPDATE \"{schema}\".jobwire_meta SET value = '1' WHERE key = 'schema_version'")

    reopened = PostgresStore.from_url(pg_url)
    await reopened.open()
    try:
        await reopened.ping()
        counts = await reopened.counts()
        assert (counts["default"][State.QUEUED], counts["cpu"][State.QUEUED]) == (2, 1)
        assert await reopened.list_workers() == []
    finally:
        await reopened.close()


async def test_a_schema_of_version_3_is_migrated_with_worker_names_keeping_its_jobs(
    pg_url: str, schema: str
) -> None:
    store = PostgresStore.from_url(pg_url)
    await store.open()
    [enqueued] = await store.enqueue([new()])
    await store.close()
    await sql(f'DROP TABLE "{schema}".jobwire_job_names')
    await sql(f'ALTER TABLE "{schema}".jobwire_workers DROP COLUMN names')
    await sql(
        f'INSERT INTO "{schema}".jobwire_workers '
        "VALUES ('old', 'h', 1, '{default}', 1, '0.1', 1.0, 2.0, '{}')"
    )
    await sql(f"UPDATE \"{schema}\".jobwire_meta SET value = '3' WHERE key = 'schema_version'")

    reopened = PostgresStore.from_url(pg_url)
    await reopened.open()
    try:
        await reopened.ping()
        [old] = await reopened.list_workers()
        assert (old.id, old.names) == ("old", ())
        await reopened.record_job_names(["crunch"], 5.0)
        assert await reopened.job_names() == {"crunch": 5.0}
        assert await reopened.get(enqueued.job.id) == enqueued.job
    finally:
        await reopened.close()


async def test_a_schema_of_version_5_gets_the_schedules_table_and_keeps_its_jobs(
    pg_url: str, schema: str
) -> None:
    store = PostgresStore.from_url(pg_url)
    await store.open()
    [enqueued] = await store.enqueue([new()])
    await store.close()
    await sql(f'DROP TABLE "{schema}".jobwire_schedules')
    await sql(f"UPDATE \"{schema}\".jobwire_meta SET value = '5' WHERE key = 'schema_version'")

    reopened = PostgresStore.from_url(pg_url)
    await reopened.open()
    try:
        await reopened.ping()
        states = await reopened.track_schedules(["nightly"], 7.0)
        assert (states["nightly"].since, states["nightly"].paused) == (7.0, False)
        assert await reopened.get(enqueued.job.id) == enqueued.job
    finally:
        await reopened.close()


async def test_a_schema_of_version_6_gets_the_rate_limit_tables_and_keeps_its_jobs(
    pg_url: str, schema: str
) -> None:
    store = PostgresStore.from_url(pg_url)
    await store.open()
    [enqueued] = await store.enqueue([new()])
    await store.close()
    await sql(f'DROP TABLE "{schema}".jobwire_rate_starts')
    await sql(f'DROP TABLE "{schema}".jobwire_permits')
    await sql(f"UPDATE \"{schema}\".jobwire_meta SET value = '6' WHERE key = 'schema_version'")

    reopened = PostgresStore.from_url(pg_url)
    await reopened.open()
    try:
        await reopened.ping()
        limit = Limit("job:crunch", rate=1, period=60.0, concurrency=1)
        assert await reopened.acquire_permit([limit], "h", 100.0, 10.0) is None
        refused = await reopened.acquire_permit([limit], "g", 100.0, 11.0)
        assert refused == pytest.approx(70.0, abs=0.5)
        assert await reopened.get(enqueued.job.id) == enqueued.job
    finally:
        await reopened.close()
