"""What the memory store offers beyond the contract: a clock that tests control."""

from __future__ import annotations

from jobwire.model import State
from jobwire.store.base import NewJob
from jobwire.store.memory import MemoryStore


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_memory_store_reads_time_from_the_clock_it_is_given() -> None:
    clock = Clock(1000.0)
    store = MemoryStore(clock=clock)
    await store.open()
    [enqueued] = await store.enqueue(
        [NewJob(id="a", job="crunch", args={}, scheduled_at=1060.0, max_attempts=2)]
    )
    assert enqueued.job.created_at == 1000.0
    assert await store.claim("w1", ["default"], ["crunch"], 1, 30.0) == []
    clock.now = 1060.0
    [claim] = await store.claim("w1", ["default"], ["crunch"], 1, 30.0)
    assert claim.job.lease_expires_at == 1090.0
    clock.now = 1090.0
    [reaped] = await store.reap()
    assert reaped.state is State.QUEUED and 1090.0 <= reaped.scheduled_at <= 1091.0
