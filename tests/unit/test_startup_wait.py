"""A server or worker whose PostgreSQL or Redis is not up yet at start-up.

By default the app's lifespan serves at once and keeps opening the store in the
background (readiness 503 meanwhile, liveness 200); ``JOBWIRE_STARTUP_TIMEOUT_SECONDS``
bounds the wait (then liveness fails too) and 0 fails the start-up at once. The late
engine itself coming up is tested against real servers in tests/chaos/test_engine_late.py.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from jobwire import Jobwire, StoreUnavailable
from tests.support import jobs as support
from tests.support.engines import free_port
from tests.support.waiting import until

ENGINES = ["postgresql", "redis"]


def nobody_at(engine: str) -> str:
    """A URL of the engine on a port where nothing listens."""
    port = free_port()
    if engine == "postgresql":
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return f"redis://127.0.0.1:{port}/0"


def app_over(url: str, **settings: object) -> tuple[Jobwire, FastAPI]:
    jobs = support.jobs.using(url, **settings)
    jobs.registry = {"add": jobs.registry["add"]}
    app = FastAPI()
    app.include_router(jobs.router, prefix="/jobs")
    return jobs, app


@pytest.mark.parametrize("engine", ENGINES)
async def test_with_a_zero_startup_timeout_the_start_up_fails_at_once(engine: str) -> None:
    jobs, _ = app_over(nobody_at(engine), startup_timeout_seconds=0)
    with pytest.raises(StoreUnavailable):
        async with jobs.lifespan():
            pytest.fail("the lifespan started without its store")


@pytest.mark.parametrize("engine", ENGINES)
async def test_the_app_serves_unready_while_its_store_is_away(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jobwire")
    jobs, app = app_over(nobody_at(engine))
    async with jobs.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            live = await client.get("/jobs/health/live")
            ready = await client.get("/jobs/health/ready")
            submit = await client.post("/jobs", json={"job": "add", "args": {"a": 1}})
        with pytest.raises(StoreUnavailable, match="not open yet"):
            await jobs.get("0192-some-job")
        assert jobs.worker is None  # the embedded worker waits for the store

    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["detail"].startswith("the job store is unavailable: not open yet")
    assert submit.status_code == 503 and submit.headers["retry-after"]
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("start-up")]
    assert "the store is unavailable" in line and "retrying with backoff" in line


@pytest.mark.parametrize("engine", ENGINES)
async def test_past_the_startup_timeout_the_app_is_no_longer_alive(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jobwire")
    jobs, app = app_over(nobody_at(engine), startup_timeout_seconds=0.5)
    transport = httpx.ASGITransport(app=app)
    async with (
        jobs.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://localhost") as client,
    ):
        await until(lambda: jobs.startup_failed, within=10, what="the start-up to give up")
        live = await client.get("/jobs/health/live")
        ready = await client.get("/jobs/health/ready")

    assert live.status_code == 503
    assert "JOBWIRE_STARTUP_TIMEOUT_SECONDS" in live.json()["detail"]
    assert ready.status_code == 503
    assert any(
        r.levelno == logging.ERROR and "gave up opening the store" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("engine", ENGINES)
async def test_open_when_reachable_gives_up_after_its_timeout(engine: str) -> None:
    jobs = Jobwire(nobody_at(engine))
    with pytest.raises(StoreUnavailable, match=r"after waiting 0\.3 s at start-up"):
        await jobs.open_when_reachable(0.3)
