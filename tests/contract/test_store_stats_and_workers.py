"""The store contract, continued: job statistics and the worker registry, on every engine."""

from __future__ import annotations

import asyncio
import time

import pytest

from jobwire.errors import StaleClaim
from jobwire.ids import new_job_id, new_token
from jobwire.model import State
from jobwire.store.base import ListQuery, NewJob, Store, WorkerInfo
from jobwire.store.stats import BUCKETS, JobStats

LEASE = 3600.0


def new(**fields: object) -> NewJob:
    fields.setdefault("id", new_job_id())
    fields.setdefault("job", "crunch")
    fields.setdefault("args", {"n": 1})
    return NewJob(**fields)  # type: ignore[arg-type]


def of(stats: list[JobStats], queue: str, job: str) -> JobStats:
    [found] = [s for s in stats if (s.queue, s.job) == (queue, job)]
    return found


async def counts_by_listing(store: Store) -> dict[str, dict[State, int]]:
    """The same counts the slow way: reading every job."""
    out: dict[str, dict[State, int]] = {}
    cursor = None
    while True:
        page = await store.list(ListQuery(before_id=cursor, limit=200))
        for job in page.items:
            out.setdefault(job.queue, dict.fromkeys(State, 0))[job.state] += 1
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


# -- counts and statistics ---------------------------------------------------------------


async def test_counts_give_every_state_of_every_queue_as_the_jobs_move(store: Store) -> None:
    assert await store.counts() == {}
    await store.enqueue([new(queue="cpu", max_attempts=2) for _ in range(5)])
    await store.enqueue([new(queue="io", job="crawl")])
    claims = await store.claim("w1", ["cpu"], ["crunch"], 4, LEASE)
    await store.finish(claims[0].job.id, claims[0].token, 1)
    await store.fail(claims[1].job.id, claims[1].token, {"type": "E", "message": "x"}, None)
    await store.fail(claims[2].job.id, claims[2].token, {"type": "E", "message": "x"}, time.time())
    [queued_io] = (await store.list(ListQuery(queue="io"))).items
    await store.cancel(queued_io.id)

    counts = await store.counts()
    assert counts == {
        "cpu": {
            State.QUEUED: 2,  # one never claimed, one back to retry
            State.RUNNING: 1,
            State.SUCCEEDED: 1,
            State.FAILED: 1,
            State.CANCELLED: 0,
        },
        "io": {
            State.QUEUED: 0,
            State.RUNNING: 0,
            State.SUCCEEDED: 0,
            State.FAILED: 0,
            State.CANCELLED: 1,
        },
    }
    assert counts == await counts_by_listing(store)


async def test_totals_count_each_kind_of_transition_per_queue_and_job(store: Store) -> None:
    await store.enqueue([new(max_attempts=2, options={"max_crashes": 1}) for _ in range(3)])
    await store.enqueue([new(job="crawl")])
    claims = await store.claim("w1", ["default"], ["crunch"], 3, LEASE)
    await store.finish(claims[0].job.id, claims[0].token, 1)
    await store.fail(claims[1].job.id, claims[1].token, {"type": "E", "message": "x"}, time.time())
    short = await store.claim("w1", ["default"], ["crunch"], 1, 0.5)  # the retried one
    assert [c.job.id for c in short] == [claims[1].job.id]
    reaped = await store.reap(now=time.time() + 60)  # its lease ran out: no crashes left
    assert [j.id for j in reaped] == [claims[1].job.id]
    assert reaped[0].state is State.FAILED
    await store.mark_cancelled(claims[2].job.id, claims[2].token)

    crunch = of(await store.stats(), "default", "crunch")
    assert crunch.totals == {
        "enqueued": 3,
        "started": 4,
        "succeeded": 1,
        "failed": 1,
        "retried": 1,
        "cancelled": 1,
        "expired": 1,
    }
    crawl = of(await store.stats(), "default", "crawl")
    assert crawl.totals["enqueued"] == 1
    assert crawl.totals["started"] == 0
    assert crawl.states[State.QUEUED] == 1


async def test_histograms_hold_one_wait_per_start_and_one_run_per_ended_attempt(
    store: Store,
) -> None:
    await store.enqueue([new(scheduled_at=time.time() - 7.0)])  # due 7 s ago
    [claim] = await store.claim("w1", ["default"], ["crunch"], 1, LEASE)
    await store.finish(claim.job.id, claim.token, 1)

    stats = of(await store.stats(), "default", "crunch")
    assert stats.wait.count == 1
    assert 7.0 <= stats.wait.sum < 7.0 + 60  # generous: a loaded machine
    bound, waited = next((b, n) for b, n in stats.wait.cumulative() if n)
    assert bound == 10.0 and waited == 1  # the first bucket that holds 7 s
    assert stats.run.count == 1
    assert 0.0 <= stats.run.sum < 60
    assert len(stats.wait.buckets) == len(BUCKETS) + 1


async def test_prune_takes_pruned_jobs_off_the_counts_but_not_off_the_totals(
    store: Store,
) -> None:
    await store.enqueue([new() for _ in range(3)])
    claims = await store.claim("w1", ["default"], ["crunch"], 2, LEASE)
    for claim in claims:
        await store.finish(claim.job.id, claim.token, 1)
    assert await store.prune(time.time() + 1) == 2

    stats = of(await store.stats(), "default", "crunch")
    assert stats.states[State.SUCCEEDED] == 0
    assert stats.states[State.QUEUED] == 1
    assert stats.totals["succeeded"] == 2
    assert await store.counts() == await counts_by_listing(store)


async def test_a_refused_write_changes_no_count_even_beside_accepted_ones(store: Store) -> None:
    await store.enqueue([new() for _ in range(4)])
    claims = await store.claim("w1", ["default"], ["crunch"], 4, LEASE)
    # Issued together, so an engine that batches writes commits them in one go.
    results = await asyncio.gather(
        *(store.finish(c.job.id, c.token, 1) for c in claims[:3]),
        store.finish(claims[3].job.id, new_token(), 1),
        return_exceptions=True,
    )
    assert isinstance(results[3], StaleClaim)
    counts = (await store.counts())["default"]
    assert (counts[State.SUCCEEDED], counts[State.RUNNING]) == (3, 1)
    assert of(await store.stats(), "default", "crunch").totals["succeeded"] == 3


# -- the worker registry -----------------------------------------------------------------


def worker(worker_id: str = "host-a:101:abc", at: float | None = None) -> WorkerInfo:
    now = time.time() if at is None else at
    return WorkerInfo(
        id=worker_id,
        host="host-a",
        pid=101,
        queues=("default", "cpu"),
        concurrency=8,
        version="0.1.0",
        started_at=now,
        last_heartbeat=now,
        names=("crunch", "send-mail"),
    )


async def test_a_registered_worker_is_listed_as_it_registered(store: Store) -> None:
    info = worker()
    await store.register_worker(info)
    assert await store.list_workers() == [info]


async def test_a_heartbeat_records_its_time_and_the_running_jobs(store: Store) -> None:
    info = worker()
    await store.register_worker(info)
    later = info.last_heartbeat + 12.345678
    assert await store.worker_heartbeat(info.id, ["job-1", "job-2"], later) is True
    [seen] = await store.list_workers()
    assert seen.last_heartbeat == pytest.approx(later, abs=1e-3)
    assert seen.running == ("job-1", "job-2")
    assert (seen.host, seen.pid, seen.queues, seen.concurrency, seen.names) == (
        "host-a",
        101,
        ("default", "cpu"),
        8,
        ("crunch", "send-mail"),
    )


async def test_a_heartbeat_of_an_unknown_worker_says_so_and_registers_nothing(
    store: Store,
) -> None:
    assert await store.worker_heartbeat("nobody", [], time.time()) is False
    assert await store.list_workers() == []


async def test_a_deregistered_worker_is_gone_and_others_stay(store: Store) -> None:
    await store.register_worker(worker("a"))
    await store.register_worker(worker("b"))
    await store.deregister_worker("a")
    await store.deregister_worker("never-registered")
    assert [w.id for w in await store.list_workers()] == ["b"]


async def test_a_worker_is_lost_after_a_lease_without_heartbeat_then_pruned(
    store: Store,
) -> None:
    now = time.time()
    await store.register_worker(worker("silent", at=now - 100))
    await store.register_worker(worker("alive", at=now))
    lost = {w.id: w.is_lost(30.0, now) for w in await store.list_workers()}
    assert lost == {"silent": True, "alive": False}
    assert await store.prune_workers(now - 50) == 1
    assert [w.id for w in await store.list_workers()] == ["alive"]


async def test_registering_again_replaces_the_entry(store: Store) -> None:
    await store.register_worker(worker("a", at=1000.0))
    again = worker("a", at=2000.0)
    await store.register_worker(again)
    assert await store.list_workers() == [again]


async def test_a_worker_without_job_names_is_listed_with_none(store: Store) -> None:
    silent = WorkerInfo("old", "host-a", 7, ("default",), 1, "0.0.9", 1000.0, 1000.0)
    await store.register_worker(silent)
    assert await store.worker_heartbeat("old", [], 1001.0) is True
    [seen] = await store.list_workers()
    assert seen.names == ()
    assert seen.runs("anything", "default") and not seen.runs("anything", "cpu")


# -- known job names ---------------------------------------------------------------------


async def test_a_new_store_knows_no_job_names(store: Store) -> None:
    assert await store.job_names() == {}


async def test_recorded_job_names_are_listed_with_when_they_were_last_seen(
    store: Store,
) -> None:
    await store.record_job_names(["crunch", "send-mail"], 1000.25)
    await store.record_job_names(["crunch", "resize"], 2000.5)
    await store.record_job_names([], 3000.0)
    assert await store.job_names() == {"crunch": 2000.5, "resize": 2000.5, "send-mail": 1000.25}


async def test_a_job_names_last_seen_time_never_moves_back(store: Store) -> None:
    await store.record_job_names(["crunch"], 2000.0)
    await store.record_job_names(["crunch", "crunch"], 1000.0)  # a clock behind the other
    assert await store.job_names() == {"crunch": 2000.0}


async def test_job_names_outlive_the_workers_and_jobs_that_used_them(store: Store) -> None:
    now = time.time()
    await store.register_worker(worker("gone", at=now - 100))
    await store.record_job_names(["crunch"], now - 100)
    [enqueued] = await store.enqueue([new()])
    await store.cancel(enqueued.job.id)
    assert await store.prune_workers(now) == 1
    await store.prune(now + 1)
    assert await store.job_names() == {"crunch": now - 100}


async def test_webhook_attempts_are_counted_delivered_or_failed(store: Store) -> None:
    [enqueued] = await store.enqueue([new(options={"webhook": {"url": "https://h/x"}})])
    [claim] = await store.claim("w1", ["default"], ["crunch"], 1, LEASE)
    await store.finish(claim.job.id, claim.token, 1)
    [delivery] = await store.claim_deliveries(10, 60.0)
    await store.record_delivery_attempt(
        delivery.id, delivery.claim_token or "", ok=False, status_code=500, error=None,
        next_attempt_at=time.time(),
    )  # fmt: skip
    [again] = await store.claim_deliveries(10, 60.0)
    await store.record_delivery_attempt(
        again.id, again.claim_token or "", ok=True, status_code=200, error=None,
        next_attempt_at=None,
    )  # fmt: skip
    assert await store.webhook_totals() == {"delivered": 1, "failures": 1}
    assert [(s.queue, s.job) for s in await store.stats()] == [("default", "crunch")]
    assert enqueued.created
