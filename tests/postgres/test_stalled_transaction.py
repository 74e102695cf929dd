"""A writer that goes silent inside its transaction (cut off, frozen) does not keep its
job's row locked: the server ends the transaction, and the job can be reclaimed."""

from __future__ import annotations

import asyncio

import pytest

from jobwire.errors import StoreUnavailable
from jobwire.model import State
from jobwire.store.postgres import PostgresStore, _Tx
from tests.postgres.conftest import open_store
from tests.support.stores import new
from tests.support.waiting import until


async def test_a_writer_stalled_inside_its_transaction_lets_go_of_the_job(
    pg_url: str, first: PostgresStore
) -> None:
    stalled = open_store(pg_url, idle_in_transaction_timeout=0.5)
    await stalled.open()
    try:
        [queued] = await first.enqueue([new(max_attempts=3)])
        [claim] = await stalled.claim("cut-off", ["default"], ["crunch"], 1, lease=0.5)
        # A write of the cut-off worker has locked the job's row, and then its client
        # says nothing more: to the server, a worker whose link died looks just so.
        locked, never = asyncio.Event(), asyncio.Event()

        async def stall(tx: _Tx) -> None:
            await tx.lock(claim.job.id)
            locked.set()
            await never.wait()

        write = asyncio.create_task(stalled._write(stall))
        await locked.wait()

        # Its lease runs out; the reaper skips locked rows, so it reaps the job only
        # once the server has ended the silent transaction.
        reaped = await until(first.reap, within=5, every=0.1, what="the job to be reaped")
        assert [(job.id, job.state) for job in reaped] == [(queued.job.id, State.QUEUED)]

        never.set()
        with pytest.raises(StoreUnavailable):
            await write  # its connection is gone: nothing it staged can commit
        reaped_job = await first.get(queued.job.id)
        assert (reaped_job.attempts, reaped_job.crashes) == (0, 1)  # lost: not charged
    finally:
        await stalled.close()


async def test_the_store_sets_the_idle_transaction_timeout_on_its_connections(
    first: PostgresStore,
) -> None:
    assert first._pool is not None
    assert await first._pool.fetchval("SHOW idle_in_transaction_session_timeout") == "10s"
