"""SIGTERM to a standalone worker: it stops claiming at once, lets short jobs finish
within the grace period, hands long ones back without charging an attempt, and exits."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from jobwire import Jobwire
from jobwire.settings import Settings
from jobwire.store.base import Claim
from jobwire.store.sqlite import SQLiteStore
from tests.chaos.app import jobs as chaos_jobs
from tests.chaos.conftest import Chaos
from tests.chaos.effects import SIDE_EFFECTS_ENV
from tests.chaos.harness import WORKER_STARTED, enqueue, gone, side_effects, until

GRACE = 2.0
# The lease is long on purpose: jobs that come back at once were released, not reaped.
ENV = {"JOBWIRE_SHUTDOWN_GRACE_SECONDS": str(GRACE), "JOBWIRE_LEASE_SECONDS": "30"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "to_group"),
    [
        pytest.param(signal.SIGTERM, False, id="SIGTERM to the worker"),
        # A service manager (systemd's default) or a terminal signals every process.
        pytest.param(signal.SIGTERM, True, id="SIGTERM to its process group"),
        pytest.param(signal.SIGINT, True, id="Ctrl-C"),
    ],
)
def test_a_worker_told_to_stop_finishes_short_jobs_and_hands_long_ones_back_uncharged(
    chaos: Chaos, sig: signal.Signals, to_group: bool
) -> None:
    first = chaos.procs.worker("worker-1", **ENV)
    first_id = first.wait_for(WORKER_STARTED).group(1)
    long_async = enqueue(chaos.url, "slow_once", [{"seconds": 60.0}] * 3)
    long_process = enqueue(chaos.url, "crunch_once", [{"seconds": 60.0}])
    # A thread cannot be stopped: this one must not keep the worker's process alive.
    long_thread = enqueue(chaos.url, "blocking", [{"seconds": 60.0}])
    long = long_async + long_process + long_thread
    until(lambda: len(side_effects(chaos.effects)) == 5, 30, "the long jobs to start")
    # Short jobs: they are still running when the signal comes and end within the grace.
    short = enqueue(chaos.url, "sleeper", [{"seconds": 1.5}] * 3)
    until(lambda: len(side_effects(chaos.effects)) == 8, 30, "the short jobs to start")
    job_processes = [p.pid for p in first.descendants()]

    stopped_at = time.monotonic()
    assert not [e for e in side_effects(chaos.effects) if e.what == "end"], "ended too soon"
    if to_group:
        os.killpg(first.pid, sig)
    else:
        first.signal(sig)
    first.wait_for(r"stop requested")
    late = enqueue(chaos.url, "sleeper", [{"seconds": 0.1}] * 3)
    assert first.wait(GRACE + 10) == 0, first.output_tail()
    exited_after = time.monotonic() - stopped_at
    until(lambda: all(gone(pid) for pid in job_processes), 10, "the worker's job processes to exit")
    print(f"\nworker exited {exited_after:.2f} s after {sig.name} (grace {GRACE} s)")
    assert exited_after < GRACE + 2.5, first.output_tail()
    assert " ERROR " not in first.output, first.output

    jobs = chaos.ledger.jobs()
    for job_id in short:
        assert jobs[job_id].state == "succeeded", jobs[job_id]
        assert jobs[job_id].attempts == 1
    for job_id in long:
        assert jobs[job_id].state == "queued", jobs[job_id]
        assert jobs[job_id].attempts == 0, "a released job is not charged an attempt"
        last = chaos.ledger.events(job_id)[-1]
        assert (last.type, last.data) == ("queued", {"released": True, "worker": first_id})
    for job_id in late:
        assert jobs[job_id].state == "queued", jobs[job_id]
        assert [e.type for e in chaos.ledger.events(job_id)] == ["queued"], (
            "a job enqueued after SIGTERM was claimed by the stopping worker"
        )

    second = chaos.procs.worker("worker-2", **ENV)
    second_id = second.wait_for(WORKER_STARTED).group(1)
    until(lambda: set(chaos.ledger.states()) == {"succeeded"}, 20, "every job to succeed")
    jobs = chaos.ledger.jobs()
    succeeded = chaos.ledger.count("succeeded")
    assert all(succeeded[job_id] == 1 for job_id in jobs), succeeded
    for job_id in long:
        assert jobs[job_id].result == "resumed"
        assert jobs[job_id].attempts == 1
        starts = [e.data for e in chaos.ledger.events(job_id) if e.type == "started"]
        assert starts == [
            {"attempt": 1, "worker": first_id},
            {"attempt": 1, "worker": second_id},
        ]
    for job_id in late:
        starts = [e.data for e in chaos.ledger.events(job_id) if e.type == "started"]
        assert starts == [{"attempt": 1, "worker": second_id}]
    ends = [e.job_id for e in side_effects(chaos.effects) if e.what == "end"]
    assert sorted(ends) == sorted(jobs), "each job ran to its end exactly once"

    second.signal(signal.SIGTERM)
    assert second.wait(GRACE + 10) == 0


async def test_jobs_a_claim_took_just_as_the_stop_came_are_handed_back_not_run(
    chaos: Chaos, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SIDE_EFFECTS_ENV, str(chaos.effects))
    in_flight = asyncio.Event()
    go_on = asyncio.Event()

    class SlowToClaim(SQLiteStore):
        async def claim(self, *args: Any, **kwargs: Any) -> list[Claim]:
            in_flight.set()
            await go_on.wait()  # the stop arrives while this claim is on its way
            return await super().claim(*args, **kwargs)

    settings = Settings(url=chaos.url, process_concurrency=1, poll_seconds=60.0)
    jobwire = Jobwire(store=SlowToClaim(chaos.db), settings=settings)
    jobwire.registry = dict(chaos_jobs.registry)
    async with jobwire:
        worker = await jobwire.start_worker()
        await in_flight.wait()
        handle = await jobwire.enqueue(chaos_jobs.spec("sleeper"), {"seconds": 0.1})
        drained = asyncio.create_task(worker.drain(grace=5.0))
        worker.stop_claiming()
        go_on.set()
        await drained
        job = await jobwire.get(handle.id)
        events = await jobwire.store.events(handle.id)

    assert job is not None and (job.state, job.attempts) == ("queued", 0)
    assert [e.type.value for e in events] == ["queued", "started", "queued"]
    assert events[-1].data["released"] is True
    assert side_effects(chaos.effects) == [], "the stopping worker ran a job it claimed"
