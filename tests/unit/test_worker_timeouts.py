"""Hard timeouts: a process job is killed, an async job is cancelled."""

from __future__ import annotations

import psutil

from jobwire import State
from tests.support import jobs as support
from tests.support.waiting import event_types, first_event, output_has, until
from tests.unit.conftest import AppFactory


def is_job_process(process: psutil.Process) -> bool:
    try:
        return "jobwire.worker.child" in process.cmdline()
    except psutil.Error:
        return False


def gone(pid: int) -> bool:
    """The process no longer exists: killed and reaped, not a zombie."""
    return not psutil.pid_exists(pid)


async def test_a_process_job_spinning_past_its_timeout_is_killed_and_fails(
    make_app: AppFactory,
) -> None:
    app = make_app("spin_with_timeout", "square", process_concurrency=2)
    me = psutil.Process()
    async with app.lifespan():
        # Once a job has run, the pool's processes are up: "started" is when the code starts.
        assert await (await app.enqueue("square", {"n": 2})).result(timeout=30) == 4
        handle = await app.enqueue("spin_with_timeout", {})
        announced = await first_event(app, handle.id, output_has("pid"))
        pid = announced.data["output"]["pid"]
        assert pid in {child.pid for child in me.children(recursive=True)}

        job = await handle.wait(timeout=10)
        assert job.state is State.FAILED
        assert job.error is not None and job.error["type"] == "JobTimeout"
        assert job.error["message"] == "attempt exceeded its timeout of 1 s"
        assert job.started_at is not None and job.finished_at is not None
        assert 1 <= job.finished_at - job.started_at <= 1 + 1
        assert await event_types(app, job.id) == ["queued", "started", "output", "failed"]

        await until(lambda: gone(pid), within=5, what=f"job process {pid} to be gone")

        # Only the pool's processes are left: the killed one was replaced, not leaked.
        # (Other tests' processes may still be exiting beside us: count job processes.)
        def pool_refilled() -> set[int]:
            pids = {child.pid for child in me.children(recursive=True) if is_job_process(child)}
            return pids if len(pids) == 2 else set()

        pool = await until(pool_refilled, within=10, what="exactly the pool's two job processes")
        assert pid not in pool


async def test_a_timeout_counts_from_the_jobs_start_not_from_its_process_starting(
    make_app: AppFactory,
) -> None:
    # Straight after start the pool's process is still starting (well over 0.3 s): a
    # clock started at the claim would run out before the 0.7 s nap ends.
    app = make_app("naps")
    async with app.lifespan():
        handle = await app.enqueue("naps", {"seconds": 0.7})
        assert await handle.result(timeout=20) == 0.7


async def test_an_async_job_over_its_timeout_is_cancelled_and_fails(make_app: AppFactory) -> None:
    app = make_app("sleep_past_timeout")
    async with app.lifespan():
        handle = await app.enqueue("sleep_past_timeout", {"seconds": 60})
        job = await handle.wait(timeout=10)

    assert job.state is State.FAILED
    assert job.error is not None and job.error["type"] == "JobTimeout"
    assert job.started_at is not None and job.finished_at is not None
    assert job.finished_at - job.started_at < 0.5 + 1
    assert job.id in support.ASYNC_CANCELLED, "the job's coroutine was never cancelled"
