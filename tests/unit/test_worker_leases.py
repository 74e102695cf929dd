"""A worker keeps its own lease clock: a heartbeat the store never answers (a dead
link, a half-open connection) does not let a job run on past its lease."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from jobwire import EventType, Jobwire, Settings, State
from jobwire.store.base import HeartbeatReply
from jobwire.store.sqlite import SQLiteStore
from tests.support import jobs as support
from tests.support.waiting import event_types, first_event, until

LEASE = 1.0  # heartbeats every 1/3 s


class HalfOpen(SQLiteStore):
    """Once ``cut`` is set, heartbeats are sent and never answered; the rest works."""

    cut = False

    async def heartbeat(
        self, worker_id: str, tokens: Mapping[str, str], lease: float
    ) -> HeartbeatReply:
        if self.cut:
            await asyncio.Event().wait()
        return await super().heartbeat(worker_id, tokens, lease)


def app_over(store: SQLiteStore, db: Path) -> Jobwire:
    settings = Settings(
        url=f"sqlite:///{db}",
        lease_seconds=LEASE,
        reap_interval_seconds=3600.0,  # nobody reclaims the job: this worker's doing only
        poll_seconds=0.5,
    )
    app = Jobwire(store=store, settings=settings)
    app.registry = {name: support.jobs.registry[name] for name in ("sleeps", "stamp")}
    return app


async def test_a_job_whose_heartbeats_go_unanswered_is_stopped_when_its_lease_runs_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "jobwire.db"
    store = HalfOpen(db)
    app = app_over(store, db)
    with caplog.at_level(logging.WARNING, logger="jobwire.worker"):
        async with app.lifespan():
            handle = await app.enqueue("sleeps", {"seconds": 60})
            await first_event(app, handle.id, lambda e: e.type is EventType.STARTED)
            store.cut = True
            cut_at = time.monotonic()
            await until(
                lambda: handle.id in support.ASYNC_CANCELLED,
                within=LEASE + 5,
                what="the job to be stopped",
            )
            stopped_after = time.monotonic() - cut_at
            # The worker still works: only its heartbeats are stuck.
            other = await app.enqueue("stamp", {"label": "still here"})
            assert await other.result(timeout=10) == "still here"
            job = await app.get(handle.id)
            types = await event_types(app, handle.id)

    # Not before a heartbeat could have been due and unanswered, nor long after the lease.
    assert LEASE * 2 / 3 - 0.1 <= stopped_after <= LEASE + 1.5
    assert f"job {handle.id}: lease lost: no heartbeat answered" in caplog.text
    [stopped] = [r for r in caplog.records if getattr(r, "job_id", None) == handle.id]
    assert (stopped.job, stopped.attempt, stopped.error_type) == (  # type: ignore[attr-defined]
        "sleeps",
        1,
        "LeaseExpired",
    )
    assert "lease lost; this attempt stops and its result is discarded" in stopped.getMessage()
    # It wrote nothing about the attempt: the store's lease and fencing decide what next.
    assert job is not None and (job.state, job.attempts) == (State.RUNNING, 1)
    assert types == ["queued", "started"]


async def test_a_job_whose_heartbeats_are_answered_runs_for_many_leases(tmp_path: Path) -> None:
    db = tmp_path / "jobwire.db"
    app = app_over(HalfOpen(db), db)
    async with app.lifespan():
        handle = await app.enqueue("sleeps", {"seconds": LEASE * 2.5})
        assert await handle.result(timeout=15) == LEASE * 2.5
    assert handle.id not in support.ASYNC_CANCELLED
    assert (handle.job.state, handle.job.attempts) == (State.SUCCEEDED, 1)
