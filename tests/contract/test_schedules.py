"""Schedules on every engine: schedulers racing for a tick make one job, the misfire
policies, DST nights, pause and resume over HTTP, and bulk cancel over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from jobwire import Jobwire
from jobwire.model import Job, State
from jobwire.services.scheduler import Scheduler
from jobwire.store.base import ListQuery, Store
from tests.support.jobs import jobs as support_jobs

PARIS = ZoneInfo("Europe/Paris")


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
async def app(store: Store) -> AsyncIterator[Jobwire]:
    """The support jobs over the engine's store, opened, without worker or services."""
    app = Jobwire(store=store, embedded_workers=False)
    app.registry = {name: support_jobs.registry[name] for name in ("typed_async", "noop")}
    async with app:
        yield app


@pytest.fixture
async def http(app: Jobwire) -> AsyncIterator[httpx.AsyncClient]:
    api = FastAPI()
    api.include_router(app.router, prefix="/jobs")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client


def scheduler(app: Jobwire, clock: Callable[[], float]) -> Scheduler:
    return Scheduler(app.store, app.schedules, app._fire, 1.0, clock=clock)


async def all_jobs(store: Store) -> list[Job]:
    found: list[Job] = []
    cursor = None
    while True:
        page = await store.list(ListQuery(before_id=cursor, limit=200))
        found.extend(page.items)
        if page.next_cursor is None:
            return sorted(found, key=lambda job: job.scheduled_at)
        cursor = page.next_cursor


def ticks(jobs: list[Job]) -> list[float]:
    return [job.options["tick"] for job in jobs]


async def test_schedulers_racing_for_every_tick_make_one_job_per_tick(app: Jobwire) -> None:
    app.schedule("* * * * * *", "typed_async", {"n": 7}, name="every-second")
    clock = Clock(1_000_000.5)
    racers = [scheduler(app, clock) for _ in range(4)]
    await asyncio.gather(*(s.run_once() for s in racers))  # first sight: nothing due yet
    for _ in range(5):
        clock.at += 1
        await asyncio.gather(*(s.run_once() for s in racers))
    jobs = await all_jobs(app.store)
    assert ticks(jobs) == [1_000_001.0, 1_000_002.0, 1_000_003.0, 1_000_004.0, 1_000_005.0]
    assert {(job.job, job.state, job.args["n"]) for job in jobs} == {
        ("typed_async", State.QUEUED, 7)
    }
    assert [job.scheduled_at for job in jobs] == ticks(jobs)  # due at their tick


async def test_a_scheduler_killed_between_enqueue_and_record_leaves_no_duplicate(
    app: Jobwire,
) -> None:
    schedule = app.schedule("* * * * * *", "noop", name="s")
    clock = Clock(2_000_000.0)
    await scheduler(app, clock).run_once()
    await app._fire(schedule, 2_000_001.0)  # enqueued, never recorded
    clock.at = 2_000_001.2
    assert await scheduler(app, clock).run_once() == 1  # the tick is still due: re-fired
    assert ticks(await all_jobs(app.store)) == [2_000_001.0]  # …and found by its key


@pytest.mark.parametrize(
    ("misfire", "expected"),
    [
        ("latest", [3_000_540.0]),  # nothing on time: the newest missed tick, once
        ("skip", []),
        ("all", [3_000_000.0 + 60 * i for i in range(10)]),
    ],
)
async def test_ticks_missed_while_everything_was_down_follow_the_policy(
    app: Jobwire, misfire: str, expected: list[float]
) -> None:
    app.schedule("* * * * *", "noop", name="m", misfire=misfire, grace=30)  # type: ignore[arg-type]
    clock = Clock(3_000_000.0 - 1)
    await scheduler(app, clock).run_once()
    clock.at = 3_000_000.0 + 9 * 60 + 45  # down for nine minutes; the last tick 45 s ago
    await scheduler(app, clock).run_once()
    assert ticks(await all_jobs(app.store)) == expected
    clock.at += 20  # the next tick is on time: fired whatever the policy
    await scheduler(app, clock).run_once()
    assert ticks(await all_jobs(app.store))[len(expected) :] == [3_000_600.0]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ((2026, 3, 29), datetime(2026, 3, 29, 3, 0, tzinfo=PARIS)),  # 02:30 does not exist
        ((2026, 10, 25), datetime(2026, 10, 25, 2, 30, tzinfo=PARIS)),  # 02:30 happens twice
    ],
)
async def test_a_daily_0230_job_runs_once_on_a_dst_night(
    app: Jobwire, day: tuple[int, int, int], expected: datetime
) -> None:
    app.schedule("30 2 * * *", "noop", name="nightly", timezone="Europe/Paris")
    start = datetime(*day, 0, 0, tzinfo=PARIS).timestamp()
    clock = Clock(start)
    run = scheduler(app, clock)
    while clock.at < start + 6 * 3600:  # the whole night, a pass a minute
        await run.run_once()
        clock.at += 60
    assert ticks(await all_jobs(app.store)) == [expected.timestamp()]


async def test_schedules_are_listed_paused_and_resumed_over_http(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    app.schedule("0 * * * * *", "typed_async", {"n": 1}, name="minutely")
    app.schedule("0 0 1 1 *", "noop", name="elsewhere", owner="someone-else")  # yearly
    listed = await http.get("/jobs/schedules")
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]  # not someone else's
    assert item | {"next_fire_at": None} == {
        "name": "minutely",
        "job": "typed_async",
        "cron": "0 * * * * *",
        "timezone": "UTC",
        "args": {"n": 1},
        "misfire": "latest",
        "queue": None,
        "paused": False,
        "next_fire_at": None,
        "last_fire_at": None,
        "last_job_id": None,
        "last_outcome": None,
    }
    assert datetime.fromisoformat(item["next_fire_at"]).second == 0

    paused = await http.post("/jobs/schedules/minutely/pause")
    assert (paused.status_code, paused.json()["paused"], paused.json()["next_fire_at"]) == (
        200,
        True,
        None,
    )
    clock = Clock(datetime.now(UTC).timestamp() + 120)
    assert await scheduler(app, clock).run_once() == 0  # paused: nothing fires
    resumed = await http.post("/jobs/schedules/minutely/resume")
    assert resumed.json()["paused"] is False
    # From the resume on: its next tick fires, none of those that passed while paused.
    clock.at = datetime.fromisoformat(resumed.json()["next_fire_at"]).timestamp() + 1
    assert await scheduler(app, clock).run_once() == 1
    [job] = await all_jobs(app.store)
    after = (await http.get("/jobs/schedules")).json()["items"][0]
    assert (after["last_job_id"], after["last_outcome"]) == (job.id, "queued")
    assert after["last_fire_at"] is not None

    for path in ("/jobs/schedules/nope/pause", "/jobs/schedules/elsewhere/resume"):
        missing = await http.post(path)
        assert missing.status_code == 404, missing.text
        assert "not found" in missing.json()["detail"]


async def test_bulk_cancel_by_job_queue_state_and_time_counts_then_cancels(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    noops = [await app.enqueue("noop") for _ in range(3)]
    other_queue = await app.enqueue("noop", queue="cpu")
    typed = await app.enqueue("typed_async", {"n": 1})
    not_mine = await app.enqueue("noop", owner="someone-else")

    body = {"job": "noop", "queue": "default", "states": ["queued"]}
    counted = await http.post("/jobs/bulk/cancel?dry_run=true", json=body)
    assert counted.json() == {"count": 3, "dry_run": True}
    assert {job.state for job in await all_jobs(app.store)} == {State.QUEUED}

    later = datetime.now(UTC).replace(year=2100).isoformat()
    none = await http.post("/jobs/bulk/cancel", json={**body, "created_after": later})
    assert none.json()["count"] == 0
    done = await http.post("/jobs/bulk/cancel", json=body)
    assert (done.status_code, done.json()) == (200, {"count": 3, "dry_run": False})
    states = {job.id: job.state for job in await all_jobs(app.store)}
    assert [states[h.id] for h in noops] == [State.CANCELLED] * 3
    assert {states[h.id] for h in (other_queue, typed, not_mine)} == {State.QUEUED}

    everything = await http.post("/jobs/bulk/cancel", json={})
    assert everything.json()["count"] == 2  # the caller's own only
    assert {job.id for job in await all_jobs(app.store) if job.state is State.QUEUED} == {
        not_mine.id
    }


async def test_bulk_purge_deletes_the_matching_queued_jobs_only(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    doomed = [await app.enqueue("noop") for _ in range(2)]
    other_queue = await app.enqueue("noop", queue="cpu")
    typed = await app.enqueue("typed_async", {"n": 1})
    not_mine = await app.enqueue("noop", owner="someone-else")
    done_before = await app.enqueue("noop", queue="cpu")
    await app.cancel(done_before.id)  # already ended: not a queued job to purge

    body = {"job": "noop", "queue": "default"}
    counted = await http.post("/jobs/bulk/purge?dry_run=true", json=body)
    assert counted.json() == {"count": 2, "dry_run": True}
    purged = await http.post("/jobs/bulk/purge", json=body)
    assert (purged.status_code, purged.json()) == (200, {"count": 2, "dry_run": False})
    for handle in doomed:
        assert await app.store.get(handle.id) is None
        assert await app.store.events(handle.id) == []
    left = {job.id: job.state for job in await all_jobs(app.store)}
    assert left == {
        other_queue.id: State.QUEUED,
        typed.id: State.QUEUED,
        not_mine.id: State.QUEUED,
        done_before.id: State.CANCELLED,
    }
    refused = await http.post("/jobs/bulk/purge", json={"states": ["queued"]})
    assert refused.status_code == 422 and "states" in refused.json()["detail"][0]["loc"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"states": ["succeeded"]}, "states"),
        ({"created_after": "2030-01-01T00:00:00"}, "created_after"),  # no time zone
        ({"jobs": "noop"}, "jobs"),
    ],
)
async def test_bulk_cancel_refuses_a_bad_filter_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    answer = await http.post("/jobs/bulk/cancel", json=body)
    assert answer.status_code == 422, answer.text
    assert any(field in error["loc"] for error in answer.json()["detail"])
