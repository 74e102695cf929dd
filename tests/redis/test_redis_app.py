"""A whole app over Redis: ``Jobwire("redis://…?prefix=…")`` with its embedded worker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from jobwire import EventType, JobCancelled, JobContext, Jobwire, State
from jobwire.store.redis import RedisStore
from tests.support import jobs as support
from tests.support.processes import no_new_child_survives
from tests.support.stores import FAST


@pytest.fixture(autouse=True)
def no_job_process_outlives_the_test() -> Iterator[None]:
    with no_new_child_survives():
        yield


async def test_an_app_on_a_redis_url_runs_async_jobs_to_completion(
    redis_url: str, prefix: str
) -> None:
    jobs = Jobwire(redis_url, **FAST)

    @jobs.job
    async def square(ctx: JobContext, n: int) -> int:
        ctx.progress(1, 2, message="half way")
        await asyncio.sleep(0)
        ctx.output({"n": n})
        return n * n

    async with jobs.lifespan():
        store = jobs.store
        assert isinstance(store, RedisStore) and store.prefix == prefix
        handles = [await square.enqueue(n=i) for i in range(25)]
        results = await asyncio.gather(*(h.result(timeout=30) for h in handles))
        assert results == [i * i for i in range(25)]
        job = await jobs.get(handles[3].id)
        assert job is not None and job.state is State.SUCCEEDED and job.result == 9
        types = [e.type for e in await store.events(job.id)]
        assert types[:2] == [EventType.QUEUED, EventType.STARTED]
        assert types[-1] is EventType.SUCCEEDED
        assert EventType.PROGRESS in types and EventType.OUTPUT in types


async def test_process_thread_and_async_jobs_retries_and_cancels_all_run_over_redis(
    redis_url: str,
) -> None:
    app = support.jobs.using(redis_url, **FAST)
    names = ["report_process", "report_thread", "report_async", "flaky", "cooperative_async"]
    app.registry = {name: app.registry[name] for name in names}
    async with app.lifespan():
        process = await app.enqueue("report_process", {"n": 3})
        thread = await app.enqueue("report_thread", {"n": 2})
        run_async = await app.enqueue("report_async", {"n": 4})
        flaky = await app.enqueue("flaky", {"failures": 1})
        running = await app.enqueue("cooperative_async", {})
        async for event in running.events():
            if event.type is EventType.OUTPUT:
                break  # it has started and said so
        await running.cancel()

        assert await process.result(timeout=60) == 3
        assert await thread.result(timeout=30) == 2
        assert await run_async.result(timeout=30) == 4
        assert await flaky.result(timeout=30) == "ok on attempt 2"
        with pytest.raises(JobCancelled):
            await running.result(timeout=30)

        retried = await flaky.get()
        assert retried.attempts == 2
        types = [e.type for e in await app.store.events(flaky.id)]
        assert types.count(EventType.RETRYING) == 1
        progress = [e for e in await app.store.events(process.id) if e.type is EventType.PROGRESS]
        assert [e.data["current"] for e in progress] == [1, 2, 3]


async def test_a_job_enqueued_through_one_app_is_run_by_the_worker_of_another(
    redis_url: str,
) -> None:
    # The worker polls the store only once a minute: it can only be on time because the
    # producer's enqueue woke it through Redis pub/sub.
    slow_poll = {**FAST, "poll_seconds": 60.0}
    producer = support.jobs.using(redis_url, embedded_workers=False, **slow_poll)
    producer.registry = {"add": producer.registry["add"]}
    worker = support.jobs.using(redis_url, **slow_poll)
    worker.registry = {"add": worker.registry["add"]}
    async with worker.lifespan(), producer:
        handle = await producer.enqueue("add", {"a": 2, "b": 3})
        assert await handle.result(timeout=20) == 5
