"""What a user sees of a lost lease, on every engine: the job view counts it apart from
attempts, the dashboard's attempts list shows it as lost, and the metric counts it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from jobwire import Jobwire
from jobwire.model import DEFAULT_MAX_CRASHES
from jobwire.store.base import Store
from tests.support.jobs import jobs as support_jobs


@pytest.fixture
async def app(store: Store) -> AsyncIterator[Jobwire]:
    app = Jobwire(store=store, dashboard_open=True)
    app.registry = {"add": support_jobs.registry["add"]}
    async with app:
        yield app


@pytest.fixture
async def http(app: Jobwire) -> AsyncIterator[httpx.AsyncClient]:
    api = FastAPI()
    api.include_router(app.router, prefix="/jobs")
    api.include_router(app.metrics_router)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def lose_lease(store: Store, worker: str) -> None:
    """A worker claims the job and dies: its lease ran out long ago when the reaper looks."""
    [claim] = await store.claim(worker, ["default"], ["add"], 1, -5.0)
    [reaped] = await store.reap(now=time.time() - 2.0)
    assert reaped.id == claim.job.id


async def test_a_lost_lease_shows_as_a_crash_in_the_view_the_attempts_and_the_metrics(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    handle = await app.enqueue("add", {"a": 1, "b": 2})  # retries=0: the default
    await lose_lease(app.store, "worker-1")

    view = (await http.get(f"/jobs/{handle.id}")).json()
    assert (view["state"], view["attempts"], view["max_attempts"]) == ("queued", 0, 1)
    assert (view["crashes"], view["max_crashes"]) == (1, DEFAULT_MAX_CRASHES)
    assert view["error"]["type"] == "LeaseExpired"

    detail = (await http.get(f"/jobs/ui/api/jobs/{handle.id}")).json()
    [attempt] = detail["attempt_list"]
    assert (attempt["worker"], attempt["outcome"]) == ("worker-1", "lost")
    assert (detail["crashes"], detail["max_crashes"]) == (1, DEFAULT_MAX_CRASHES)

    metrics = (await http.get("/metrics")).text
    assert metric(metrics, "jobwire_jobs_lease_expired_total") == 1.0
    assert metric(metrics, "jobwire_jobs_failed_total") in (None, 0.0)
    assert metric(metrics, "jobwire_jobs_retried_total") in (None, 0.0)


def metric(text: str, name: str) -> float | None:
    """The value of ``name`` for job add on queue default, or None when absent."""
    for line in text.splitlines():
        if line.startswith(name + "{") and 'job="add"' in line and 'queue="default"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_a_job_failed_for_its_crashes_says_how_many_times_it_lost_its_worker(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    handle = await app.enqueue("add", {"a": 1, "b": 2})
    for n in range(DEFAULT_MAX_CRASHES):
        await lose_lease(app.store, f"worker-{n}")
    view = (await http.get(f"/jobs/{handle.id}")).json()
    assert (view["state"], view["crashes"]) == ("failed", DEFAULT_MAX_CRASHES)
    assert view["error"]["type"] == "CrashBudgetExhausted"
    assert f"lost its worker {DEFAULT_MAX_CRASHES} times" in view["error"]["message"]
    detail = (await http.get(f"/jobs/ui/api/jobs/{handle.id}")).json()
    assert [a["outcome"] for a in detail["attempt_list"]] == ["lost"] * DEFAULT_MAX_CRASHES


async def test_a_crash_budget_declared_on_the_job_or_in_settings_is_the_jobs(
    store: Store,
) -> None:
    app = Jobwire(store=store, max_crashes=5)

    @app.job(max_crashes=2)
    async def fragile(ctx: object) -> None: ...

    @app.job
    async def sturdy(ctx: object) -> None: ...

    async with app:
        assert (await fragile.enqueue()).job.max_crashes == 2
        assert (await sturdy.enqueue()).job.max_crashes == 5
