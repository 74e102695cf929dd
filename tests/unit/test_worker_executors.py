"""Each executor runs jobs, reports their events in order, retries and fails them."""

from __future__ import annotations

import pytest

from jobwire import EventType, JobFailed, State
from jobwire.ids import new_job_id
from jobwire.store.base import NewJob
from tests.support.jobs import TINY_BACKOFF
from tests.support.waiting import event_types
from tests.unit.conftest import AppFactory

REPORTERS = ["report_async", "report_thread", "report_process"]


@pytest.mark.parametrize("name", REPORTERS)
async def test_each_executor_reports_progress_and_outputs_in_order_before_the_result(
    make_app: AppFactory, name: str
) -> None:
    app = make_app(name)
    async with app.lifespan():
        handle = await app.enqueue(name, {"n": 5})
        assert await handle.result(timeout=30) == 5
        events = await app.store.events(handle.id)

    assert [e.type for e in events] == [
        EventType.QUEUED,
        EventType.STARTED,
        *[EventType.PROGRESS, EventType.OUTPUT] * 5,
        EventType.SUCCEEDED,
    ]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    progress = [e.data for e in events if e.type is EventType.PROGRESS]
    assert progress == [{"current": i, "total": 5, "message": f"step {i}"} for i in range(1, 6)]
    outputs = [e.data["output"] for e in events if e.type is EventType.OUTPUT]
    assert outputs == [{"i": i} for i in range(1, 6)]
    assert events[-1].data == {"result": 5, "attempt": 1}
    assert [e.data async for e in app.events(handle.id, after=events[-2].seq)] == [
        {"result": 5, "attempt": 1}
    ]
    job = handle.job
    assert job.state is State.SUCCEEDED
    assert job.progress is not None and (job.progress.current, job.progress.total) == (5, 5)


async def test_a_job_failing_twice_then_succeeding_retries_with_backoff(
    make_app: AppFactory,
) -> None:
    app = make_app("flaky")
    async with app.lifespan():
        handle = await app.enqueue("flaky", {"failures": 2})
        assert await handle.result(timeout=30) == "ok on attempt 3"
        events = await app.store.events(handle.id)

    job = handle.job
    assert (job.state, job.attempts, job.max_attempts) == (State.SUCCEEDED, 3, 3)
    assert [e.type.value for e in events] == [
        "queued",
        "started",
        "retrying",
        "started",
        "retrying",
        "started",
        "succeeded",
    ]
    retrying = [e for e in events if e.type is EventType.RETRYING]
    starts = [e for e in events if e.type is EventType.STARTED]
    for attempt, retry in enumerate(retrying, start=1):
        started, restart = starts[attempt - 1], starts[attempt]
        assert retry.data["attempt"] == attempt
        assert retry.data["error"]["type"] == "RuntimeError"
        assert retry.data["error"]["message"] == f"attempt {attempt} fails on purpose"
        # The delay was drawn between the attempt's start and the retrying event, so
        # the retry time lies at least `low` after the one and at most `high` after the other.
        low, high = TINY_BACKOFF.bounds(attempt)
        next_run_at = retry.data["next_run_at"]
        assert next_run_at - started.at >= low
        assert next_run_at - retry.at <= high
        assert restart.at >= next_run_at, "an attempt started before its retry time"
        assert restart.data["attempt"] == attempt + 1


async def test_a_job_that_keeps_failing_ends_failed_with_its_error(make_app: AppFactory) -> None:
    app = make_app("always_fails")
    async with app.lifespan():
        handle = await app.enqueue("always_fails", {"message": "the disk is full"})
        with pytest.raises(JobFailed) as caught:
            await handle.result(timeout=30)
        types = await event_types(app, handle.id)

    job = handle.job
    assert (job.state, job.attempts, job.max_attempts) == (State.FAILED, 2, 2)
    assert types == ["queued", "started", "retrying", "started", "failed"]
    assert job.error is not None
    assert job.error["type"] == "ValueError"
    assert job.error["message"] == "the disk is full"
    assert "raise ValueError(message)" in job.error["traceback"]
    assert "always_fails" in job.error["traceback"]
    assert caught.value.error["type"] == "ValueError"
    assert "the disk is full" in str(caught.value)


@pytest.mark.parametrize("name", ["typed_async", "typed_thread", "typed_process"])
async def test_stored_arguments_that_no_longer_fit_the_job_fail_it_without_retrying(
    make_app: AppFactory, name: str
) -> None:
    app = make_app(name)
    async with app.lifespan():
        # As if the job's signature changed after this job was stored.
        [stored] = await app.store.enqueue(
            [NewJob(id=new_job_id(), job=name, args={"n": "not a number"}, max_attempts=3)]
        )
        job = await app.wait(stored.job.id, timeout=30)
        types = await event_types(app, job.id)

    assert (job.state, job.attempts) == (State.FAILED, 1)
    assert types == ["queued", "started", "failed"]
    assert job.error is not None
    assert job.error["type"] == "ValidationError"
    assert "n" in job.error["message"]


async def test_a_result_is_kept_as_json_and_read_back_through_the_return_annotation(
    make_app: AppFactory,
) -> None:
    app = make_app("square")
    async with app.lifespan():
        handle = await app.enqueue("square", {"n": 12})
        assert await handle.result(timeout=30) == 144
    assert handle.job.result == 144
