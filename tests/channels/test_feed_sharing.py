"""The feed behind every stream, in-process: many followers, few reads, no lost wake-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from jobwire.feed.follow import RECHECK_SECONDS, follow
from jobwire.feed.hub import Hub
from jobwire.model import Event, EventDraft, EventType
from jobwire.store.base import NewJob
from jobwire.store.memory import MemoryStore

JOB_ID = "01a212ec-8705-7655-ab44-897ec9311a18"


class CountingStore(MemoryStore):
    """A memory store that counts the reads followers make."""

    def __init__(self) -> None:
        super().__init__()
        self.event_reads = 0
        self.job_reads = 0

    async def events(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        self.event_reads += 1
        await asyncio.sleep(0)  # a read takes a moment: others join it meanwhile
        return await super().events(job_id, after, limit)

    async def get(self, job_id: str, owner: str | None = None) -> Any:
        self.job_reads += 1
        return await super().get(job_id, owner)


@pytest.fixture
async def running() -> AsyncIterator[tuple[CountingStore, Hub, str]]:
    store = CountingStore()
    await store.open()
    hub = Hub(store)
    await store.enqueue([NewJob(id=JOB_ID, job="x", args={})])
    [claim] = await store.claim("worker", ["default"], ["x"], 1, 600)
    yield store, hub, claim.token
    hub.close()
    await store.close()


async def test_one_change_to_a_job_with_many_followers_costs_one_read_not_one_per_follower(
    running: tuple[CountingStore, Hub, str],
) -> None:
    store, hub, token = running
    followers, outputs = 200, 5
    seen: list[list[int]] = [[] for _ in range(followers)]
    caught_up = asyncio.Event()

    async def follower(index: int) -> None:
        async for event in follow(store, hub, JOB_ID):
            assert event is not None
            seen[index].append(event.seq)
            if all(len(s) == len(seen[0]) for s in seen):
                caught_up.set()

    tasks = [asyncio.create_task(follower(i)) for i in range(followers)]
    async with asyncio.timeout(10):
        while not all(len(s) == 2 for s in seen):  # queued, started: the replay
            caught_up.clear()
            await caught_up.wait()
        reads_before = store.event_reads
        for i in range(outputs):
            caught_up.clear()
            await store.report(JOB_ID, token, [EventDraft(EventType.OUTPUT, {"output": i})])
            await caught_up.wait()
        await store.finish(JOB_ID, token, None)
        await asyncio.gather(*tasks)

    assert all(s == list(range(1, outputs + 4)) for s in seen)
    reads = store.event_reads - reads_before
    assert reads <= 2 * (outputs + 1), f"{reads} reads for {outputs + 1} changes"


async def test_a_follower_that_misses_a_wake_up_still_gets_the_event_from_the_log(
    running: tuple[CountingStore, Hub, str],
) -> None:
    store, hub, token = running
    events = follow(store, hub, JOB_ID)
    replayed = [await anext(events), await anext(events)]
    assert [e.type if e else None for e in replayed] == [EventType.QUEUED, EventType.STARTED]

    # Written with the hub deaf, as when another process's wake-up datagram is dropped.
    store.remove_listener(hub._on_notices)
    await store.report(JOB_ID, token, [EventDraft(EventType.OUTPUT, {"output": "late"})])
    store.add_listener(hub._on_notices)
    started = time.monotonic()
    async with asyncio.timeout(3 * RECHECK_SECONDS):
        event = await anext(events)
        while event is None:  # keep-alive ticks are off here, but be exact
            event = await anext(events)
    assert event.type is EventType.OUTPUT
    assert event.data == {"output": "late"}
    assert time.monotonic() - started <= 2 * RECHECK_SECONDS + 1
    await events.aclose()
