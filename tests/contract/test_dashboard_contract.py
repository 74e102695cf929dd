"""The store contract's reads and actions for the dashboard, on every engine: attempts
from the log, statistics of the last hour, the oldest queued job, retry linked both
ways, and purge of finished jobs by filter."""

from __future__ import annotations

import time

import pytest

from jobwire.errors import InvalidTransition, JobNotFound
from jobwire.ids import new_job_id
from jobwire.model import EventType, Job, State
from jobwire.store.base import Claim, FinishedQuery, Store
from tests.contract.test_store_contract import HOUR, LONG_LEASE, claim_one, enqueue_one

ERROR = {"type": "ValueError", "message": "bad", "traceback": "Traceback…\nValueError: bad"}


async def running_job(store: Store, **fields: object) -> Claim:
    return await claim_one(store, await enqueue_one(store, **fields))


async def failed_job(store: Store, **fields: object) -> Job:
    claim = await running_job(store, **fields)
    return await store.fail(claim.job.id, claim.token, ERROR, None)


async def succeeded_job(store: Store, **fields: object) -> Job:
    claim = await running_job(store, **fields)
    return await store.finish(claim.job.id, claim.token, 1)


# -- attempts ------------------------------------------------------------------------------


async def test_attempts_list_each_run_with_its_worker_times_and_how_it_ended(
    store: Store,
) -> None:
    job = await enqueue_one(store, max_attempts=2)
    [first] = await store.claim("w1", ["default"], ["crunch"], 1, LONG_LEASE)
    await store.fail(job.id, first.token, ERROR, retry_at=time.time() - 1)
    [second] = await store.claim("w2", ["default"], ["crunch"], 1, LONG_LEASE)
    running = await store.attempts(job.id)
    assert [(a.number, a.worker, a.outcome) for a in running] == [
        (1, "w1", "retrying"),
        (2, "w2", None),
    ]
    assert running[0].error == ERROR and running[1].ended_at is None
    await store.finish(job.id, second.token, 7)
    attempts = await store.attempts(job.id)
    assert [(a.number, a.worker, a.outcome) for a in attempts] == [
        (1, "w1", "retrying"),
        (2, "w2", "succeeded"),
    ]
    events = {e.type: e.at for e in await store.events(job.id)}
    assert attempts[1].ended_at == events[EventType.SUCCEEDED]
    assert attempts[0].started_at <= attempts[0].ended_at <= attempts[1].started_at  # type: ignore[operator]


async def test_an_expired_lease_ends_its_attempt_as_lost_apart_from_failures(
    store: Store,
) -> None:
    job = await enqueue_one(store, max_attempts=2)
    await store.claim("w1", ["default"], ["crunch"], 1, -5.0)  # a lease run out long ago
    assert [j.id for j in await store.reap(now=time.time() - 2.0)] == [job.id]  # due now
    [claim] = await store.claim("w2", ["default"], ["crunch"], 1, 30.0)
    await store.fail(claim.job.id, claim.token, {"type": "ValueError", "message": "no"}, None)
    lost, failed = await store.attempts(job.id)
    assert (lost.worker, lost.outcome, lost.error["type"]) == ("w1", "lost", "LeaseExpired")  # type: ignore[index]
    assert (failed.worker, failed.outcome) == ("w2", "failed")


async def test_a_job_cancelled_while_queued_has_no_attempts(store: Store) -> None:
    job = await enqueue_one(store)
    await store.cancel(job.id)
    assert await store.attempts(job.id) == []


# -- retry -----------------------------------------------------------------------------------


async def test_retry_makes_a_new_queued_job_linked_both_ways(store: Store) -> None:
    original = await failed_job(store, owner="alice", args={"n": 5}, queue="cpu", max_attempts=3)
    enqueued = await store.retry(original.id, new_job_id(), owner="alice")
    retry = enqueued.job
    assert enqueued.created and retry.id != original.id
    assert (retry.state, retry.job, retry.args) == (State.QUEUED, "crunch", {"n": 5})
    assert (retry.queue, retry.owner, retry.max_attempts) == ("cpu", "alice", 3)
    assert retry.options["retry_of"] == original.id
    assert await store.retried_by(original) == retry.id
    assert await store.retried_by(retry) is None


async def test_retrying_the_same_job_again_returns_the_same_new_job(store: Store) -> None:
    original = await failed_job(store)
    first = await store.retry(original.id, new_job_id())
    again = await store.retry(original.id, new_job_id())
    assert not again.created and again.job.id == first.job.id


async def test_a_cancelled_job_can_be_retried_and_its_retry_retried_in_turn(store: Store) -> None:
    cancelled = await store.cancel((await enqueue_one(store)).id)
    retry = (await store.retry(cancelled.id, new_job_id())).job
    cancelled_retry = await store.cancel(retry.id)
    second = (await store.retry(cancelled_retry.id, new_job_id())).job
    assert second.options["retry_of"] == retry.id
    assert await store.retried_by(cancelled_retry) == second.id
    assert await store.retried_by(cancelled) == retry.id


async def test_only_failed_or_cancelled_jobs_of_the_owner_can_be_retried(store: Store) -> None:
    done = await succeeded_job(store)
    queued = await enqueue_one(store, job="other")
    with pytest.raises(InvalidTransition, match="succeeded; cannot retry"):
        await store.retry(done.id, new_job_id())
    with pytest.raises(InvalidTransition):
        await store.retry(queued.id, new_job_id())
    failed = await failed_job(store, owner="alice")
    with pytest.raises(JobNotFound):
        await store.retry(failed.id, new_job_id(), owner="mallory")
    with pytest.raises(JobNotFound):
        await store.retry(new_job_id(), new_job_id())
    assert await store.retried_by(failed) is None


# -- activity --------------------------------------------------------------------------------


async def test_timings_are_the_finished_jobs_newest_first_of_the_owner(store: Store) -> None:
    since = time.time() - 1
    first = await succeeded_job(store, owner="alice")
    second = await failed_job(store, owner="alice", queue="cpu")
    await succeeded_job(store, owner="bob")
    await running_job(store, owner="alice", job="other")  # running: not finished
    timings = await store.timings(since, owner="alice")
    assert [(t.state, t.queue) for t in timings] == [
        (State.FAILED, "cpu"),
        (State.SUCCEEDED, "default"),
    ]
    assert timings[0].finished_at == second.finished_at
    assert timings[1].started_at == first.started_at
    assert len(await store.timings(since)) == 3
    assert len(await store.timings(since, limit=2)) == 2
    assert await store.timings(time.time() + HOUR) == []


async def test_activity_counts_succeeded_and_failed_per_minute_with_percentiles(
    store: Store,
) -> None:
    await succeeded_job(store)
    await succeeded_job(store)
    await failed_job(store)
    await store.cancel((await enqueue_one(store)).id)  # cancelled: neither
    now = time.time()
    activity = await store.activity(now)
    assert activity.complete and activity.since == now - 3600
    assert len(activity.minutes) in (60, 61)  # the partial minutes at both ends
    overall = activity.overall
    assert overall is not None and (overall.succeeded, overall.failed) == (2, 1)
    assert sum(m.succeeded for m in activity.minutes) == 2
    assert overall.run_p50 is not None and 0 <= overall.run_p50 <= overall.run_p95  # type: ignore[operator]
    assert overall.wait_p95 is not None and overall.wait_p95 >= 0
    mine = await store.activity(now, owner="nobody")
    assert mine.overall is not None and (mine.overall.succeeded, mine.overall.failed) == (0, 0)


# -- oldest queued -------------------------------------------------------------------------------


async def test_oldest_queued_is_per_queue_the_earliest_due_job(store: Store) -> None:
    now = time.time()
    await enqueue_one(store, scheduled_at=now - 30, owner="alice")
    await enqueue_one(store, scheduled_at=now - 10, owner="bob")
    await enqueue_one(store, queue="cpu", job="other", scheduled_at=now - 5, priority=3)
    await enqueue_one(store, queue="io", scheduled_at=now + HOUR)  # not due: not waiting
    assert await store.oldest_queued(now) == {"default": now - 30, "cpu": now - 5}
    assert await store.oldest_queued(now, owner="bob") == {"default": now - 10}
    await running_job(store, queue="empty")
    assert "empty" not in await store.oldest_queued(time.time())


# -- purge ---------------------------------------------------------------------------------------


async def test_purge_deletes_exactly_the_finished_jobs_its_count_announced(store: Store) -> None:
    failed = await failed_job(store, owner="alice")
    other_name = await failed_job(store, owner="alice", job="other")
    done = await succeeded_job(store, owner="alice")
    bobs = await failed_job(store, owner="bob")
    running = await running_job(store, owner="alice", job="crawl")
    queued = await enqueue_one(store, owner="alice")
    query = FinishedQuery(owner="alice", states=(State.FAILED,), job="crunch")
    assert await store.count_finished(query) == 1
    assert await store.purge(query) == 1
    assert await store.get(failed.id) is None and await store.events(failed.id) == []
    for kept in (other_name, done, bobs, running.job, queued):
        assert await store.get(kept.id) is not None
    assert await store.count_finished(query) == 0
    counts = await store.counts()  # the counters know what went
    assert (counts["default"][State.FAILED], counts["default"][State.SUCCEEDED]) == (2, 1)
    everything = FinishedQuery()
    assert await store.count_finished(everything) == 3
    assert await store.count_finished(FinishedQuery(owner="alice")) == 2
    assert await store.purge(everything) == 3
    assert await store.get(running.job.id) is not None and await store.get(queued.id) is not None
    counts = await store.counts()
    assert counts["default"][State.FAILED] == counts["default"][State.SUCCEEDED] == 0
    assert counts["default"][State.RUNNING] == counts["default"][State.QUEUED] == 1


async def test_purge_by_queue_and_finished_time_window(store: Store) -> None:
    early = await succeeded_job(store, queue="cpu")
    late = await succeeded_job(store, queue="cpu")
    elsewhere = await succeeded_job(store, queue="io")
    assert early.finished_at is not None and late.finished_at is not None
    window = FinishedQuery(queue="cpu", finished_after=late.finished_at)
    assert await store.count_finished(window) == 1
    before = FinishedQuery(queue="cpu", finished_before=late.finished_at)
    assert await store.count_finished(before) == (1 if early.finished_at < late.finished_at else 0)
    assert await store.purge(window) == 1
    assert await store.get(late.id) is None
    assert await store.get(early.id) is not None and await store.get(elsewhere.id) is not None


async def test_purging_a_retry_forgets_the_link_from_its_original(store: Store) -> None:
    original = await failed_job(store)
    retry = (await store.retry(original.id, new_job_id())).job
    await store.cancel(retry.id)
    assert await store.purge(FinishedQuery(states=(State.CANCELLED,))) == 1
    assert await store.retried_by(original) is None


def test_a_purge_filter_names_terminal_states_only() -> None:
    with pytest.raises(ValueError, match="terminal states only"):
        FinishedQuery(states=(State.RUNNING,))
