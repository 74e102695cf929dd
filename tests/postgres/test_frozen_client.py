"""A client frozen in the middle of a write (SIGSTOP, a VM pause) does not hold its jobs
for as long as it stays frozen: the server ends its idle transaction, so a reaper, which
skips locked rows, reclaims the job once its lease has run out."""

from __future__ import annotations

import asyncpg
import pytest

from tests.postgres.conftest import open_store
from tests.postgres.support import new
from tests.support.waiting import until


async def test_a_transaction_left_idle_by_a_frozen_client_is_ended_and_its_job_reclaimed(
    pg_url: str,
) -> None:
    frozen_store = open_store(pg_url, idle_in_transaction_timeout=0.5)
    other = open_store(pg_url)
    await frozen_store.open()
    await other.open()
    try:
        await frozen_store.enqueue([new(max_attempts=2)])
        [claim] = await frozen_store.claim("frozen", ["default"], ["crunch"], 1, 0.1)
        # The frozen worker: half-way through a heartbeat, holding the job's row.
        assert frozen_store._pool is not None
        frozen = await frozen_store._pool.acquire()
        await frozen.execute("BEGIN")
        await frozen.execute(frozen_store._sql["lock_jobs"], [claim.job.id])

        reaped = await until(other.reap, within=10, every=0.1, what="the job to be reaped")
        assert [(job.id, job.state.value) for job in reaped] == [(claim.job.id, "queued")]
        # Woken up, the frozen client finds its transaction gone, its writes with it.
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await frozen.execute("COMMIT")
        await frozen_store._pool.release(frozen)
    finally:
        await other.close()
        await frozen_store.close()
