"""Living through the store going away: backoff, one log line per outage, resync."""

from __future__ import annotations

import asyncio
import logging

import pytest

from jobwire.errors import StoreUnavailable
from jobwire.feed.hub import Hub
from jobwire.model import State
from jobwire.outage import Outage
from jobwire.retry import Backoff
from jobwire.services.base import Service
from jobwire.services.reaper import Reaper
from jobwire.store.base import NewJob, Notice, NoticeKind
from jobwire.store.memory import MemoryStore
from tests.support.waiting import until

log = logging.getLogger("tests.outage")


def test_an_outage_is_logged_when_it_begins_and_ends_with_capped_growing_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage(log, "claiming", Backoff(base=0.1, factor=2, cap=1.0, jitter=0.5))
    caplog.set_level(logging.DEBUG, logger="tests.outage")
    down = StoreUnavailable("connection refused")

    waits = [outage.failed(down) for _ in range(50)]
    outage.succeeded()
    outage.succeeded()  # nothing to report: the store never left again

    assert 0.05 <= waits[0] <= 0.1
    assert all(0.5 <= wait <= 1.0 for wait in waits[4:])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "claiming: the store is unavailable (connection refused); retrying with backoff",
        warnings[1],
    ]
    assert warnings[1].startswith("claiming: the store is reachable again after ")
    assert not outage.ongoing


class Flaky(Service):
    """A duty whose store is away for its first ``down`` runs."""

    name = "flaky"

    def __init__(self, down: int) -> None:
        super().__init__(interval=0.01)
        self.down = down
        self.runs = 0
        self.back = asyncio.Event()

    async def run_once(self) -> int:
        self.runs += 1
        if self.runs <= self.down:
            raise StoreUnavailable("redis script reap failed: ConnectionError")
        return 0

    def interrupted(self) -> None:
        if self.runs == self.down:
            self.back.set()


async def test_a_service_lives_through_an_outage_and_says_so_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="jobwire.services")
    service = Flaky(down=4)
    service.start()
    try:
        await asyncio.wait_for(service.back.wait(), 10)
        await until(lambda: service.runs > 6, what="the duty to carry on after the outage")
    finally:
        await service.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "jobwire.services"]
    assert len(lines) == 2, lines
    assert "unavailable" in lines[0] and "reachable again" in lines[1]


async def test_after_an_outage_the_reaper_gives_workers_one_lease_to_renew() -> None:
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.open()
    await store.enqueue([NewJob(id="a", job="crunch", args={}, max_attempts=3)])
    await store.claim("w1", ["default"], ["crunch"], 1, 30.0)
    now[0] += 31.0  # the store was away; nobody renewed the lease
    reaper = Reaper(store, interval=1.0, lease=0.3)

    reaper.interrupted()  # its last run found the store away; now it is back
    assert await reaper.run_once() == 0
    job = await store.get("a")
    assert job is not None and job.state is State.RUNNING

    # …and once that lease has passed, a lease still not renewed is reaped.
    await until(reaper.run_once, within=5, what="the reaper to reap after its hold")
    job = await store.get("a")
    assert job is not None and job.state is State.QUEUED


async def test_a_resync_notice_wakes_every_waiter_to_look_at_the_store_again() -> None:
    store = MemoryStore()
    await store.open()
    hub = Hub(store)
    with (
        hub.watch_job("some-job") as job_watch,
        hub.watch_queues(["default", "cpu"]) as queue_watch,
        hub.watch_all() as feed_watch,
    ):
        since = hub.generation("some-job")
        store._notify([Notice(NoticeKind.RESYNC, "")])
        assert job_watch.woken and queue_watch.woken and feed_watch.woken
        # A shared read started before the resync is not handed to those it woke.
        assert hub.generation("some-job") > since
    hub.close()
