"""What the SQLite store promises beyond the contract: a file that outlives the process
and is shared by every store opened on it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from jobwire.errors import ConfigError, StaleClaim, StoreUnavailable
from jobwire.ids import new_job_id
from jobwire.model import EventDraft, EventType, State
from jobwire.store.base import NewJob, Notice, NoticeKind
from jobwire.store.sqlite import SQLiteStore
from jobwire.throttle import Limit


def new(**fields: Any) -> NewJob:
    fields.setdefault("id", new_job_id())
    fields.setdefault("job", "crunch")
    fields.setdefault("args", {"n": 1})
    return NewJob(**fields)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "jobwire.db"


@pytest.fixture
async def first(path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(path)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def second(path: Path, first: SQLiteStore) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(path)
    await store.open()
    yield store
    await store.close()


def test_an_in_memory_database_is_refused_with_a_pointer_to_the_memory_store() -> None:
    with pytest.raises(ConfigError, match="MemoryStore"):
        SQLiteStore(":memory:")


def test_an_unknown_synchronous_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="NORMAL, FULL or EXTRA"):
        SQLiteStore("x.db", synchronous="OFF")


async def test_ping_refuses_a_file_whose_schema_version_is_not_current(
    first: SQLiteStore, path: Path
) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE jobwire_meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(StoreUnavailable, match="schema version is 0"):
        await first.ping()


async def test_jobs_and_their_events_survive_closing_and_reopening(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    [enqueued] = await store.enqueue([new(max_attempts=2, idempotency_key="k", fingerprint="f")])
    [claim] = await store.claim("w1", ["default"], ["crunch"], 1, 3600.0)
    await store.report(claim.job.id, claim.token, [EventDraft(EventType.OUTPUT, {"x": 1})])
    job = await store.get(claim.job.id)
    events = await store.events(claim.job.id)
    await store.close()

    reopened = SQLiteStore(path)
    await reopened.open()
    try:
        assert await reopened.get(claim.job.id) == job
        assert await reopened.events(claim.job.id) == events
        [again] = await reopened.enqueue([new(idempotency_key="k", fingerprint="f")])
        assert not again.created and again.job.id == enqueued.job.id
        done = await reopened.finish(claim.job.id, claim.token, "ok")
        assert done.state is State.SUCCEEDED
    finally:
        await reopened.close()


async def test_two_stores_on_one_file_see_each_others_writes(
    first: SQLiteStore, second: SQLiteStore
) -> None:
    [enqueued] = await first.enqueue([new()])
    assert await second.get(enqueued.job.id) == enqueued.job
    [claim] = await second.claim("w2", ["default"], ["crunch"], 1, 3600.0)
    assert claim.job.id == enqueued.job.id
    assert await first.get(enqueued.job.id) == claim.job


async def test_a_job_claimed_through_one_store_is_not_claimable_through_another(
    first: SQLiteStore, second: SQLiteStore
) -> None:
    await first.enqueue([new() for _ in range(6)])
    claims = await asyncio.gather(
        *(
            store.claim(f"w{i}", ["default"], ["crunch"], 2, 3600.0)
            for i, store in enumerate([first, second, first, second])
        )
    )
    ids = [c.job.id for batch in claims for c in batch]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert await first.claim("w9", ["default"], ["crunch"], 10, 3600.0) == []


async def test_a_write_through_one_store_is_fenced_by_a_claim_through_another(
    first: SQLiteStore, second: SQLiteStore
) -> None:
    await first.enqueue([new(max_attempts=2)])
    [zombie] = await first.claim("w1", ["default"], ["crunch"], 1, -5.0)
    await second.reap(now=time.time() - 2.0)  # long after the lease: due again now
    [current] = await second.claim("w2", ["default"], ["crunch"], 1, 3600.0)
    with pytest.raises(StaleClaim):
        await first.finish(zombie.job.id, zombie.token, "zombie")
    done = await second.finish(current.job.id, current.token, "current")
    assert (await first.get(done.id)) == done and done.result == "current"


async def test_an_outcome_sees_a_cancel_request_made_through_another_store(
    first: SQLiteStore, second: SQLiteStore
) -> None:
    # A store remembers the running jobs it wrote, so that an outcome need not read its
    # job again; a cancel request elsewhere changes the job without an event, and the
    # outcome must still be decided on, and return, the job as stored.
    await first.enqueue([new()])
    [claim] = await first.claim("w1", ["default"], ["crunch"], 1, 3600.0)
    await first.report(claim.job.id, claim.token, [EventDraft(EventType.OUTPUT, {"i": 1})])
    await second.cancel(claim.job.id)
    done = await first.finish(claim.job.id, claim.token, 7)
    assert done.cancel_requested and done.state is State.SUCCEEDED
    assert (await second.get(done.id)) == done
    events = await second.events(done.id)
    assert [(e.seq, e.type) for e in events] == [
        (1, EventType.QUEUED),
        (2, EventType.STARTED),
        (3, EventType.OUTPUT),
        (4, EventType.SUCCEEDED),
    ]


async def test_progress_and_an_outcome_after_another_store_wrote_the_job_keep_the_log_gapless(
    first: SQLiteStore, second: SQLiteStore
) -> None:
    await first.enqueue([new(max_attempts=3)])
    [claim] = await first.claim("w1", ["default"], ["crunch"], 1, 3600.0)
    progress = [EventDraft(EventType.PROGRESS, {"current": 1, "total": 2})]
    await first.report(claim.job.id, claim.token, progress)
    # Another process's write that moves the log on: the zombie case without a reclaim.
    await second.reap(now=claim.job.started_at or 0.0)  # nothing expired: no change
    await second.cancel(claim.job.id)
    await first.report(claim.job.id, claim.token, progress)
    retry_at = time.time() + 60
    failed = await first.fail(claim.job.id, claim.token, {"type": "E", "message": "x"}, retry_at)
    assert failed.state is State.CANCELLED  # a job whose cancel was asked is not retried
    assert [e.seq for e in await second.events(failed.id)] == [1, 2, 3, 4, 5]
    assert (await second.get(failed.id)) == failed


async def test_a_wrong_token_is_refused_and_leaves_the_remembered_job_as_it_was(
    first: SQLiteStore,
) -> None:
    await first.enqueue([new()])
    [claim] = await first.claim("w1", ["default"], ["crunch"], 1, 3600.0)
    with pytest.raises(StaleClaim):
        await first.finish(claim.job.id, "not-the-token", 1)
    stored = await first.get(claim.job.id)
    assert stored is not None and stored.state is State.RUNNING
    done = await first.finish(claim.job.id, claim.token, 2)
    assert done.result == 2 and done.last_seq == 3


async def test_a_notice_crosses_between_two_stores_on_one_file(
    first: SQLiteStore, second: SQLiteStore
) -> None:
    job_id = new_job_id()
    heard = asyncio.Event()
    notices: list[Notice] = []

    def listener(batch: Sequence[Notice]) -> None:
        notices.extend(batch)
        if Notice(NoticeKind.JOB, job_id) in batch:
            heard.set()

    second.add_listener(listener)
    await first.enqueue([new(id=job_id, queue="cpu")])
    await asyncio.wait_for(heard.wait(), timeout=10)
    assert Notice(NoticeKind.JOBS, "cpu") in notices


async def test_a_cancel_request_through_one_store_reaches_the_worker_of_another(
    first: SQLiteStore, second: SQLiteStore
) -> None:
    await second.enqueue([new()])
    [claim] = await second.claim("w2", ["default"], ["crunch"], 1, 3600.0)
    asked = asyncio.Event()

    def listener(batch: Sequence[Notice]) -> None:
        if Notice(NoticeKind.CANCEL, claim.job.id) in batch:
            asked.set()

    second.add_listener(listener)
    await first.cancel(claim.job.id)
    await asyncio.wait_for(asked.wait(), timeout=10)


async def test_many_concurrent_writes_all_commit(first: SQLiteStore) -> None:
    batch = [new() for _ in range(300)]
    results = await asyncio.gather(*(first.enqueue([item]) for item in batch))
    assert all(r[0].created for r in results)
    claims = await first.claim("w1", ["default"], ["crunch"], 1000, 3600.0)
    assert {c.job.id for c in claims} == {item.id for item in batch}


async def test_a_file_of_the_previous_version_gets_counts_of_the_jobs_it_holds(
    path: Path,
) -> None:
    store = SQLiteStore(path)
    await store.open()
    await store.enqueue([NewJob(id=new_job_id(), job="crunch", args={}) for _ in range(3)])
    [claim] = await store.claim("w1", ["default"], ["crunch"], 1, 60.0)
    await store.finish(claim.job.id, claim.token, 1)
    await store.close()
    with sqlite3.connect(path) as conn:  # as version 2 left it: no counters
        conn.execute("DROP TABLE job_stats")
        conn.execute("UPDATE jobwire_meta SET value = '2' WHERE key = 'schema_version'")

    reopened = SQLiteStore(path)
    await reopened.open()
    try:
        await reopened.ping()
        counts = await reopened.counts()
        assert counts["default"][State.QUEUED] == 2
        assert counts["default"][State.SUCCEEDED] == 1
    finally:
        await reopened.close()


async def test_a_file_of_version_3_gets_worker_names_and_keeps_its_jobs(path: Path) -> None:
    store = SQLiteStore(path)
    await store.open()
    [enqueued] = await store.enqueue([new()])
    await store.close()
    with sqlite3.connect(path) as conn:  # as version 3 left it: no job names anywhere
        conn.execute("DROP TABLE job_names")
        conn.execute("ALTER TABLE workers DROP COLUMN names")
        conn.execute(
            "INSERT INTO workers VALUES ('old', 'h', 1, '[\"default\"]', 1, '0.1', 1.0, 2.0, '[]')"
        )
        conn.execute("UPDATE jobwire_meta SET value = '3' WHERE key = 'schema_version'")

    reopened = SQLiteStore(path)
    await reopened.open()
    try:
        await reopened.ping()
        [old] = await reopened.list_workers()
        assert (old.id, old.names) == ("old", ())
        await reopened.record_job_names(["crunch"], 5.0)
        assert await reopened.job_names() == {"crunch": 5.0}
        assert await reopened.get(enqueued.job.id) == enqueued.job
        assert (await reopened.counts())["default"][State.QUEUED] == 1
    finally:
        await reopened.close()


async def test_a_file_of_version_5_gets_the_schedules_table_and_keeps_its_jobs(
    path: Path,
) -> None:
    store = SQLiteStore(path)
    await store.open()
    [enqueued] = await store.enqueue([new()])
    await store.close()
    with sqlite3.connect(path) as conn:  # as version 5 left it: no schedules table
        conn.execute("DROP TABLE schedules")
        conn.execute("UPDATE jobwire_meta SET value = '5' WHERE key = 'schema_version'")

    reopened = SQLiteStore(path)
    await reopened.open()
    try:
        await reopened.ping()
        states = await reopened.track_schedules(["nightly"], 7.0)
        assert (states["nightly"].since, states["nightly"].paused) == (7.0, False)
        assert await reopened.get(enqueued.job.id) == enqueued.job
    finally:
        await reopened.close()


async def test_a_file_of_version_6_gets_the_rate_limit_tables_and_keeps_its_jobs(
    path: Path,
) -> None:
    store = SQLiteStore(path)
    await store.open()
    [enqueued] = await store.enqueue([new()])
    await store.close()
    with sqlite3.connect(path) as conn:  # as version 6 left it: no rate limit tables
        conn.execute("DROP TABLE rate_starts")
        conn.execute("DROP TABLE permits")
        conn.execute("UPDATE jobwire_meta SET value = '6' WHERE key = 'schema_version'")

    reopened = SQLiteStore(path)
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
