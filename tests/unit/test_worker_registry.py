"""A worker puts itself in the store's registry, keeps its heartbeat fresh (running
jobs included) and takes itself out when it drains."""

from __future__ import annotations

import time

from jobwire import Jobwire
from jobwire.store import store_from_url
from tests.support.waiting import first_event, until
from tests.unit.conftest import AppFactory


async def running_ids(app: Jobwire) -> tuple[str, ...]:
    [entry] = await app.store.list_workers()
    return entry.running


async def test_a_worker_is_listed_while_it_runs_with_its_jobs_and_gone_after_drain(
    make_app: AppFactory,
) -> None:
    # A lease of 0.6 s: a heartbeat every 0.2 s, so the test sees several without delay.
    app = make_app("waits_for_cancel", lease_seconds=0.6)
    async with app.lifespan():
        worker = app.worker
        assert worker is not None
        [listed] = await app.store.list_workers()
        assert (listed.id, listed.queues) == (worker.id, tuple(worker.queues))
        assert listed.concurrency == app.settings.async_concurrency
        assert not listed.is_lost(app.settings.lease_seconds, time.time())

        handle = await app.enqueue("waits_for_cancel", {})
        await first_event(app, handle.id, lambda e: e.type.value == "started")
        await until(lambda: running_ids(app), within=10, what="a heartbeat listing the running job")
        assert await running_ids(app) == (handle.id,)
        await app.cancel(handle.id)
        await handle.wait(timeout=10)
        await until(lambda: _none_running(app), within=10, what="a heartbeat with no running job")

    # The lifespan drained the worker, which took itself out of the registry.
    store = store_from_url(app.settings.url)
    await store.open()
    try:
        assert await store.list_workers() == []
    finally:
        await store.close()


async def _none_running(app: Jobwire) -> bool:
    return await running_ids(app) == ()


async def test_a_worker_the_store_forgot_registers_again_at_its_next_heartbeat(
    make_app: AppFactory,
) -> None:
    app = make_app("stamp", lease_seconds=0.6)
    async with app.lifespan():
        worker = app.worker
        assert worker is not None
        await app.store.deregister_worker(worker.id)  # as a prune after a long cut-off
        assert await app.store.list_workers() == []

        async def listed_again() -> bool:
            return [w.id for w in await app.store.list_workers()] == [worker.id]

        await until(listed_again, within=10, what="the worker registered again")


async def test_every_instance_that_starts_records_its_job_names_workers_or_not(
    make_app: AppFactory,
) -> None:
    server = make_app("stamp", "add", embedded_workers=False)
    async with server.lifespan():
        assert server.worker is None
        assert set(await server.store.job_names()) == {"add", "stamp"}
    with_worker = make_app("noop")
    async with with_worker.lifespan():
        assert with_worker.worker is not None
        [entry] = await with_worker.store.list_workers()
        assert entry.names == ("noop",)
        assert set(await with_worker.store.job_names()) == {"add", "noop", "stamp"}
