"""The reaper logs each job it takes back from a worker that stopped heartbeating."""

from __future__ import annotations

import logging

import pytest

from jobwire.ids import new_job_id
from jobwire.services.reaper import Reaper
from jobwire.store.base import NewJob, Store
from tests.support.waiting import until


async def test_each_expired_lease_is_one_warning_naming_the_job_attempt_and_worker(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jobwire.services")
    [stored] = await store.enqueue([NewJob(id=new_job_id(), job="crunch", args={}, max_attempts=2)])
    [claim] = await store.claim("worker-a", ["default"], ["crunch"], 1, 0.05)
    reaper = Reaper(store, interval=3600.0)

    await until(reaper.run_once, within=10, what="the lease to expire and be reaped")

    [record] = [r for r in caplog.records if getattr(r, "job_id", None) == stored.job.id]
    assert record.levelno == logging.WARNING
    assert (record.job, record.attempt, record.worker) == (  # type: ignore[attr-defined]
        "crunch",
        1,
        "worker-a",
    )
    message = record.getMessage()
    assert f"job {stored.job.id} (crunch) attempt 1/2: lease expired" in message
    assert "worker-a" in message and "now queued" in message and "crash 1 of 3" in message
    assert claim.job.id == stored.job.id
