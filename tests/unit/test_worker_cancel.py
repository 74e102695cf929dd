"""Cancellation: while queued, cooperatively while running, by force after the grace
period, and racing the claim and the finish — a job always ends exactly once."""

from __future__ import annotations

import asyncio
import random
import time

import psutil
import pytest

from jobwire import AlreadyTerminal, EventType, Jobwire, State
from tests.support.waiting import event_types, first_event, output_has, output_is, until
from tests.unit.conftest import AppFactory


async def assert_ended_once(app: Jobwire, job_id: str) -> State:
    """The log holds exactly one terminal event, last, agreeing with the record."""
    events = await app.store.events(job_id)
    job = await app.get(job_id)
    assert job is not None
    endings = [e.type for e in events if e.type.terminal]
    assert len(endings) == 1, f"job {job_id} ended {len(endings)} times: {endings}"
    assert events[-1].type.terminal
    assert endings[0].value == job.state.value
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    return job.state


async def test_a_queued_job_is_cancelled_at_once_and_never_starts(make_app: AppFactory) -> None:
    app = make_app("stamp")
    async with app.lifespan():
        doomed = await app.enqueue("stamp", {"label": "doomed"}, delay=0.3)
        cancelled = await app.cancel(doomed.id)
        assert cancelled.state is State.CANCELLED
        assert cancelled.finished_at is not None
        # A job due after the cancelled one has run: the worker had its chance at both.
        later = await app.enqueue("stamp", {"label": "later"}, delay=0.4)
        assert await later.result(timeout=10) == "later"
        job = await doomed.get()
        assert await event_types(app, job.id) == ["queued", "cancelled"]

    assert job.state is State.CANCELLED
    assert (job.attempts, job.started_at) == (0, None)


@pytest.mark.parametrize("name", ["cooperative_async", "cooperative_thread", "cooperative_process"])
async def test_a_running_job_that_checks_for_cancellation_stops_and_ends_cancelled(
    make_app: AppFactory, name: str
) -> None:
    # A grace period far longer than the test: only the job's own check can stop it.
    app = make_app(name, cancel_grace_seconds=60)
    async with app.lifespan():
        handle = await app.enqueue(name, {})
        await first_event(app, handle.id, output_is("ready"))
        flagged = await app.cancel(handle.id)
        assert (flagged.state, flagged.cancel_requested) == (State.RUNNING, True)
        job = await handle.wait(timeout=10)
        types = await event_types(app, job.id)

    assert job.state is State.CANCELLED
    assert types == ["queued", "started", "output", "cancelled"]


async def test_a_process_job_ignoring_cancellation_is_killed_after_the_grace_period(
    make_app: AppFactory,
) -> None:
    grace = 0.5
    app = make_app("spin_ignoring_cancel", cancel_grace_seconds=grace)
    async with app.lifespan():
        handle = await app.enqueue("spin_ignoring_cancel", {})
        pid = (await first_event(app, handle.id, output_has("pid"))).data["output"]["pid"]
        asked = time.time()
        await app.cancel(handle.id)
        job = await handle.wait(timeout=10)
        assert job.state is State.CANCELLED
        assert job.finished_at is not None
        assert grace - 0.05 <= job.finished_at - asked <= grace + 1.5
        await until(lambda: not psutil.pid_exists(pid), within=5, what=f"process {pid} gone")
        assert await event_types(app, job.id) == ["queued", "started", "output", "cancelled"]


async def test_cancelling_a_finished_job_is_refused_as_already_terminal(
    make_app: AppFactory,
) -> None:
    app = make_app("stamp")
    async with app.lifespan():
        handle = await app.enqueue("stamp", {"label": "done"})
        await handle.result(timeout=10)
        with pytest.raises(AlreadyTerminal) as caught:
            await app.cancel(handle.id)
        assert await event_types(app, handle.id) == ["queued", "started", "succeeded"]
    assert str(caught.value) == f"job {handle.id} is succeeded; cannot cancel it"


# -- races ------------------------------------------------------------------------------------


async def cancel_quietly(app: Jobwire, job_id: str) -> None:
    try:
        flagged = await app.cancel(job_id)
    except AlreadyTerminal:
        return
    assert flagged.state in (State.CANCELLED, State.RUNNING)
    assert flagged.cancel_requested


async def yield_a_few_times(rng: random.Random) -> None:
    for _ in range(rng.randrange(4)):
        await asyncio.sleep(0)


async def test_a_cancel_racing_the_claim_ends_every_job_exactly_once(make_app: AppFactory) -> None:
    rng = random.Random(1)
    app = make_app("quick_async")
    outcomes: set[State] = set()
    async with app.lifespan():
        for _ in range(50):
            handle = await app.enqueue("quick_async", {"spins": rng.randrange(3)})
            await yield_a_few_times(rng)
            await cancel_quietly(app, handle.id)
            await handle.wait(timeout=10)
            outcomes.add(await assert_ended_once(app, handle.id))
    assert outcomes <= {State.CANCELLED, State.SUCCEEDED}


async def test_a_cancel_just_after_the_claim_ends_every_job_exactly_once(
    make_app: AppFactory,
) -> None:
    rng = random.Random(2)
    app = make_app("quick_async")
    async with app.lifespan():
        for _ in range(50):
            handle = await app.enqueue("quick_async", {"spins": rng.randrange(20)})
            started = await asyncio.wait_for(_started_or_over(app, handle.id), 10)
            if started:
                await cancel_quietly(app, handle.id)
            await handle.wait(timeout=10)
            state = await assert_ended_once(app, handle.id)
            assert state in (State.CANCELLED, State.SUCCEEDED)


@pytest.mark.parametrize(
    ("name", "rounds"), [("quick_async", 50), ("quick_thread", 50), ("quick_process", 15)]
)
async def test_a_cancel_sent_while_the_job_finishes_never_yields_two_endings(
    make_app: AppFactory, name: str, rounds: int
) -> None:
    rng = random.Random(3)
    app = make_app(name, cancel_grace_seconds=0.2)
    async with app.lifespan():
        handles = []
        for _ in range(rounds):
            handle = await app.enqueue(name, {"spins": 0})
            # The job returns at once; the cancel goes out while it is claimed, running
            # or being recorded, whichever comes first.
            await asyncio.gather(
                handle.wait(timeout=20),
                _cancel_after(app, handle.id, rng.random() * 0.01),
            )
            handles.append(handle)
        states = [await assert_ended_once(app, h.id) for h in handles]
    assert set(states) <= {State.CANCELLED, State.SUCCEEDED}


async def _cancel_after(app: Jobwire, job_id: str, seconds: float) -> None:
    await asyncio.sleep(seconds)  # a random point in the job's short life, not a wait for it
    await cancel_quietly(app, job_id)


async def _started_or_over(app: Jobwire, job_id: str) -> bool:
    async for event in app.events(job_id):
        if event.type is EventType.STARTED:
            return True
        if event.type.terminal:
            return False
    return False


async def test_a_cancel_sent_while_the_job_waits_for_a_process_still_reaches_the_job(
    make_app: AppFactory,
) -> None:
    # Right after start the pool's process is still starting; the job waits for it and
    # the cancel arrives meanwhile. With a grace period longer than the test, only a
    # cancel flag that reaches the job process can end it.
    app = make_app("cooperative_process", cancel_grace_seconds=60)
    async with app.lifespan():
        handle = await app.enqueue("cooperative_process", {})
        await first_event(app, handle.id, lambda e: e.type is EventType.STARTED)
        await app.cancel(handle.id)
        job = await handle.wait(timeout=20)
        assert job.state is State.CANCELLED


async def test_a_worker_stopped_while_its_job_processes_start_leaves_none_behind(
    make_app: AppFactory,
) -> None:
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    app = make_app("cooperative_process", process_concurrency=2)
    async with app.lifespan():
        pass  # stop at once, while the pool's processes are still starting
    left = {child.pid for child in me.children(recursive=True)} - before
    assert not left, f"job processes outlived their worker: {sorted(left)}"
