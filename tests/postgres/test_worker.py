"""The whole path on PostgreSQL: ``Jobwire("postgresql://…")`` with an embedded worker
runs async and process jobs to the end, retries, and follows them by their logs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from jobwire import EventType, Jobwire, State
from jobwire.store.postgres import PostgresStore
from tests.support import jobs as support
from tests.support.processes import no_new_child_survives
from tests.support.stores import FAST


@pytest.fixture(autouse=True)
def no_job_process_outlives_the_test() -> Iterator[None]:
    with no_new_child_survives():
        yield


def make_app(pg_url: str, *names: str, **overrides: Any) -> Jobwire:
    app = support.jobs.using(pg_url, **{**FAST, **overrides})
    app.registry = {name: app.registry[name] for name in names}
    return app


async def test_an_embedded_worker_runs_async_and_process_jobs_to_completion_on_postgres(
    pg_url: str,
) -> None:
    app = make_app(pg_url, "report_async", "report_process", "flaky")
    async with app.lifespan():
        assert isinstance(app.store, PostgresStore)
        handles = [await app.enqueue("report_async", {"n": n}) for n in (1, 3, 5)]
        process = await app.enqueue("report_process", {"n": 4})
        flaky = await app.enqueue("flaky", {"failures": 1})
        results = await asyncio.gather(*(h.result(timeout=60) for h in handles))
        assert results == [1, 3, 5]
        assert await process.result(timeout=60) == 4
        assert await flaky.result(timeout=60) == "ok on attempt 2"

        events = [e async for e in process.events(after=0)]
        assert [e.type for e in events][:2] == [EventType.QUEUED, EventType.STARTED]
        assert events[-1].type is EventType.SUCCEEDED
        assert [e.data["current"] for e in events if e.type is EventType.PROGRESS] == [1, 2, 3, 4]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        retried = [e.type for e in await app.store.events(flaky.id)]
        assert retried.count(EventType.RETRYING) == 1 and retried[-1] is EventType.SUCCEEDED
        job = await app.get(flaky.id)
        assert job is not None and job.state is State.SUCCEEDED and job.attempts == 2
        # The store-wide feed holds every event of every job, in one order.
        feed = await app.store.feed(after=0, limit=10_000)
        logs = [await app.store.events(h.id) for h in [*handles, process, flaky]]
        assert sorted(feed, key=lambda e: e.cursor) == feed
        assert len(feed) == sum(len(log) for log in logs)


async def test_a_worker_in_another_process_is_woken_by_a_job_enqueued_here(pg_url: str) -> None:
    producer = make_app(pg_url, "report_async", embedded_workers=False)
    worker = make_app(pg_url, "report_async")
    async with producer, worker.lifespan():
        handle = await producer.enqueue("report_async", {"n": 2})
        assert await handle.result(timeout=60) == 2
        job = await producer.get(handle.id)
        assert job is not None and job.started_at is not None
        # Woken by NOTIFY, not found by its next poll of the store.
        assert job.started_at - job.created_at < FAST["poll_seconds"]
