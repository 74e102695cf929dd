"""``no_worker`` in ``GET P/{id}``: a queued job that no live worker runs says so, on
every engine; the worker registry each engine keeps is what it reads."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from jobwire import Jobwire
from jobwire.store.base import Store, WorkerInfo
from tests.support.jobs import jobs as support_jobs

LEASE = 30.0


@pytest.fixture
async def app(store: Store) -> AsyncIterator[Jobwire]:
    """The support jobs ``add`` and ``stamp`` over the engine's store, opened, no worker."""
    app = Jobwire(store=store, lease_seconds=LEASE, poll_seconds=0.5)
    app.registry = {name: support_jobs.registry[name] for name in ("add", "stamp")}
    async with app:
        yield app
        if app.worker is not None:
            await app.worker.drain(grace=2.0)


@pytest.fixture
async def http(app: Jobwire) -> AsyncIterator[httpx.AsyncClient]:
    api = FastAPI()
    api.include_router(app.router, prefix="/jobs")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client


async def view(http: httpx.AsyncClient, job_id: str) -> dict[str, object]:
    response = await http.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def registered(worker_id: str, names: tuple[str, ...], *, silent_for: float = 0.0) -> WorkerInfo:
    at = time.time() - silent_for
    return WorkerInfo(worker_id, "h", 1, ("default",), 4, "0.1", at, at, names=names)


async def test_a_queued_job_no_worker_runs_is_flagged_until_one_starts(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    handle = await app.enqueue("add", {"a": 1}, delay=3600)
    assert (await view(http, handle.id))["no_worker"] is True

    await app.start_worker()  # registers add and stamp on the default queue
    assert {"add", "stamp"} <= set(await app.store.job_names())
    after = await view(http, handle.id)
    assert (after["state"], after["no_worker"]) == ("queued", False)


async def test_a_worker_of_other_names_a_lost_one_or_one_of_another_queue_does_not_count(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    handle = await app.enqueue("add", {"a": 1}, delay=3600)
    await app.store.register_worker(registered("other-names", ("stamp",)))
    await app.store.register_worker(registered("lost", ("add",), silent_for=LEASE + 5))
    elsewhere = await app.enqueue("add", {"a": 1}, delay=3600, queue="cpu")
    await app.store.register_worker(registered("default-only", ("add",)))
    assert (await view(http, elsewhere.id))["no_worker"] is True
    assert (await view(http, handle.id))["no_worker"] is False


async def test_a_job_that_is_not_queued_is_never_flagged(
    app: Jobwire, http: httpx.AsyncClient
) -> None:
    handle = await app.enqueue("add", {"a": 1}, delay=3600)
    await app.cancel(handle.id)
    body = await view(http, handle.id)
    assert (body["state"], body["no_worker"]) == ("cancelled", False)


async def test_lists_leave_the_flag_out(app: Jobwire, http: httpx.AsyncClient) -> None:
    await app.enqueue("add", {"a": 1}, delay=3600)
    [item] = (await http.get("/jobs")).json()["items"]
    assert "no_worker" not in item
