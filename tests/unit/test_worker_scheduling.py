"""When jobs run: not before their time, by priority, and with a watchdog on the loop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from jobwire import EventType, State
from tests.support.waiting import event_types
from tests.unit.conftest import AppFactory


async def test_a_delayed_job_does_not_start_before_its_time(make_app: AppFactory) -> None:
    app = make_app("stamp")
    async with app.lifespan():
        before = time.time()
        handle = await app.enqueue("stamp", {"label": "later"}, delay=0.5)
        assert handle.job.state is State.QUEUED
        assert await handle.result(timeout=10) == "later"

    job = handle.job
    assert job.started_at is not None
    assert job.scheduled_at >= before + 0.5
    assert job.started_at >= job.scheduled_at
    # …and the worker woke for it, rather than on its next poll of the store.
    assert job.started_at - job.scheduled_at < 0.4


async def test_higher_priority_jobs_run_first_and_equal_ones_in_the_order_they_came(
    make_app: AppFactory,
) -> None:
    app = make_app("stamp", async_concurrency=1)
    priorities = [0, 5, -3, 10, 5, 0]
    async with app:  # store open, no worker yet: every job waits until all are queued
        handles = [
            await app.enqueue("stamp", {"label": f"job {i}"}, priority=p)
            for i, p in enumerate(priorities)
        ]
    async with app.lifespan():
        await asyncio.gather(*(h.wait(timeout=10) for h in handles))
        started = {}
        for handle in handles:
            [event] = [e for e in await app.store.events(handle.id) if e.type is EventType.STARTED]
            started[handle.id] = event.cursor

    ran = sorted(range(len(handles)), key=lambda i: started[handles[i].id])
    assert ran == [3, 1, 4, 0, 5, 2]


async def test_the_watchdog_names_an_async_job_that_blocks_the_event_loop(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app("blocks_the_loop", loop_lag_warn_seconds=0.25)
    with caplog.at_level(logging.WARNING, logger="jobwire.watchdog"):
        async with app.lifespan():
            handle = await app.enqueue("blocks_the_loop", {"seconds": 0.5})
            await handle.result(timeout=10)

    warnings = [r for r in caplog.records if r.name == "jobwire.watchdog"]
    assert warnings, "nothing was logged about a loop blocked for 0.5 s"
    message = warnings[0].getMessage()
    assert "event loop blocked for 0." in message
    assert f"blocks_the_loop({handle.id})" in message
    blocked = float(message.split("blocked for ")[1].split(" s")[0])
    assert 0.4 <= blocked < 2.0


async def test_a_job_that_kills_its_process_fails_after_its_attempts_while_others_run_on(
    make_app: AppFactory,
) -> None:
    app = make_app("poison", "noop")
    async with app.lifespan():
        poison = await app.enqueue("poison", {})
        healthy = await asyncio.gather(*(app.enqueue("noop", {}) for _ in range(1000)))
        done = await asyncio.gather(*(h.wait(timeout=60) for h in healthy))
        job = await poison.wait(timeout=60)
        types = await event_types(app, poison.id)

    assert [j.state for j in done] == [State.SUCCEEDED] * 1000
    assert (job.state, job.attempts, job.max_attempts) == (State.FAILED, 3, 3)
    assert job.error is not None and job.error["type"] == "WorkerProcessDied"
    assert "exited with code 1" in job.error["message"]
    assert types == [
        "queued",
        "started",
        "retrying",
        "started",
        "retrying",
        "started",
        "failed",
    ]
