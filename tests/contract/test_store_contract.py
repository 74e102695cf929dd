"""The store contract: every promise of ``jobwire.store.base.Store``, on every engine."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest

from jobwire import model
from jobwire.errors import (
    AlreadyTerminal,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    StaleClaim,
    StoreUnavailable,
)
from jobwire.feed.results import resolve_results
from jobwire.ids import new_job_id, new_token
from jobwire.model import EventDraft, EventType, Job, Progress, State
from jobwire.store.base import (
    Claim,
    Delivery,
    DeliveryStatus,
    ListQuery,
    NewJob,
    Notice,
    NoticeKind,
    Store,
)

HOUR = 3600.0
LONG_LEASE = HOUR


def new(**fields: Any) -> NewJob:
    fields.setdefault("id", new_job_id())
    fields.setdefault("job", "crunch")
    fields.setdefault("args", {"n": 1})
    return NewJob(**fields)


async def enqueue_one(store: Store, **fields: Any) -> Job:
    [enqueued] = await store.enqueue([new(**fields)])
    return enqueued.job


async def claim_one(store: Store, job: Job | None = None, **fields: Any) -> Claim:
    """Enqueue a job (unless given) and claim it; it must be the only one due."""
    if job is None:
        job = await enqueue_one(store, **fields)
    claims = await store.claim("w1", [job.queue], [job.job], 1, LONG_LEASE)
    assert [c.job.id for c in claims] == [job.id]
    return claims[0]


async def types_of(store: Store, job_id: str) -> list[EventType]:
    return [event.type for event in await store.events(job_id)]


async def claim_all(store: Store, limit: int = 100, **filters: Sequence[str]) -> list[str]:
    queues = filters.get("queues", ["default", "cpu", "io"])
    names = filters.get("names", ["crunch", "crawl", "other"])
    return [c.job.id for c in await store.claim("w1", queues, names, limit, LONG_LEASE)]


class Recorder:
    """A listener that keeps every notice and can be awaited for one."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self._arrived = asyncio.Event()

    def __call__(self, notices: Sequence[Notice]) -> None:
        self.notices.extend(notices)
        self._arrived.set()

    def clear(self) -> None:
        self.notices.clear()
        self._arrived.clear()


# -- lifecycle ---------------------------------------------------------------------------


async def test_an_open_store_answers_ping(store: Store) -> None:
    await store.ping()


async def test_opening_an_open_store_again_changes_nothing(store: Store) -> None:
    job = await enqueue_one(store)
    await store.open()
    assert await store.get(job.id) is not None


async def test_a_closed_store_refuses_work_with_store_unavailable(store: Store) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.enqueue([new()])
    with pytest.raises(StoreUnavailable):
        await store.get(new_job_id())
    with pytest.raises(StoreUnavailable):
        await store.ping()


# -- enqueue -----------------------------------------------------------------------------


async def test_an_enqueued_job_is_queued_and_its_event_1_is_queued(store: Store) -> None:
    before = time.time()
    job = await enqueue_one(store, args={"n": 3}, queue="cpu", priority=2, max_attempts=3)
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.state is State.QUEUED
    assert (stored.args, stored.queue, stored.priority) == ({"n": 3}, "cpu", 2)
    assert (stored.attempts, stored.max_attempts, stored.last_seq) == (0, 3, 1)
    assert before <= stored.created_at <= time.time()
    assert stored.scheduled_at == stored.created_at
    [event] = await store.events(job.id)
    assert (event.seq, event.type, event.data["queue"]) == (1, EventType.QUEUED, "cpu")


async def test_an_enqueued_job_keeps_its_scheduled_time_owner_and_options(store: Store) -> None:
    at = time.time() + HOUR
    job = await enqueue_one(
        store, scheduled_at=at, owner="alice", timeout=5.0, options={"webhook": "x"}
    )
    stored = await store.get(job.id)
    assert stored is not None
    assert (stored.scheduled_at, stored.owner, stored.timeout) == (at, "alice", 5.0)
    assert stored.options == {"webhook": "x"}


async def test_a_batch_is_enqueued_in_order_and_each_job_is_created(store: Store) -> None:
    batch = [new(args={"n": i}) for i in range(5)]
    enqueued = await store.enqueue(batch)
    assert [e.job.id for e in enqueued] == [b.id for b in batch]
    assert all(e.created for e in enqueued)
    for item in batch:
        assert await types_of(store, item.id) == [EventType.QUEUED]


async def test_an_empty_batch_enqueues_nothing(store: Store) -> None:
    assert await store.enqueue([]) == []
    assert (await store.list(ListQuery())).items == []


async def test_arguments_are_stored_as_json_not_as_the_callers_objects(store: Store) -> None:
    args: dict[str, Any] = {"items": (1, 2), "nested": {"k": "v"}}
    job = await enqueue_one(store, args=args)
    args["nested"]["k"] = "changed"
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.args == {"items": [1, 2], "nested": {"k": "v"}}


async def test_a_key_with_the_same_fingerprint_returns_the_existing_job(store: Store) -> None:
    first = await store.enqueue([new(idempotency_key="k", fingerprint="f")])
    again = await store.enqueue([new(idempotency_key="k", fingerprint="f")])
    assert first[0].created and not again[0].created
    assert again[0].job.id == first[0].job.id
    assert await types_of(store, first[0].job.id) == [EventType.QUEUED]
    assert len((await store.list(ListQuery())).items) == 1


async def test_a_key_with_another_fingerprint_raises_idempotency_conflict(store: Store) -> None:
    await store.enqueue([new(idempotency_key="k", fingerprint="f")])
    other = new(idempotency_key="k", fingerprint="g")
    with pytest.raises(IdempotencyConflict):
        await store.enqueue([other])
    assert await store.get(other.id) is None


async def test_idempotency_keys_are_scoped_per_owner(store: Store) -> None:
    alice = await store.enqueue([new(owner="alice", idempotency_key="k", fingerprint="f")])
    bob = await store.enqueue([new(owner="bob", idempotency_key="k", fingerprint="g")])
    assert alice[0].created and bob[0].created
    assert alice[0].job.id != bob[0].job.id


async def test_a_batch_with_a_conflicting_key_stores_none_of_its_jobs(store: Store) -> None:
    await store.enqueue([new(idempotency_key="k", fingerprint="f")])
    batch = [new(), new(idempotency_key="k", fingerprint="g"), new()]
    with pytest.raises(IdempotencyConflict):
        await store.enqueue(batch)
    for item in batch:
        assert await store.get(item.id) is None
    assert len((await store.list(ListQuery())).items) == 1


async def test_a_key_repeated_within_one_batch_returns_the_first_job(store: Store) -> None:
    first, second = await store.enqueue(
        [new(idempotency_key="k", fingerprint="f"), new(idempotency_key="k", fingerprint="f")]
    )
    assert first.created and not second.created
    assert second.job.id == first.job.id


# -- claim -------------------------------------------------------------------------------


async def test_a_claim_moves_the_job_to_running_with_a_started_event(store: Store) -> None:
    job = await enqueue_one(store)
    before = time.time()
    [claim] = await store.claim("w1", ["default"], ["crunch"], 10, 30.0)
    stored = await store.get(job.id)
    assert stored is not None
    assert stored == claim.job
    assert stored.state is State.RUNNING
    assert (stored.attempts, stored.worker_id, stored.claim_token) == (1, "w1", claim.token)
    assert stored.started_at is not None and before <= stored.started_at <= time.time()
    assert stored.lease_expires_at == pytest.approx(stored.started_at + 30.0)
    events = await store.events(job.id)
    assert [e.type for e in events] == [EventType.QUEUED, EventType.STARTED]
    assert events[1].data == {"attempt": 1, "worker": "w1"}


async def test_claims_take_higher_priority_first_then_earlier_scheduled(store: Store) -> None:
    now = time.time()
    late_low = await enqueue_one(store, priority=0, scheduled_at=now - 10)
    early_low = await enqueue_one(store, priority=0, scheduled_at=now - 20)
    late_high = await enqueue_one(store, priority=5, scheduled_at=now - 1)
    early_high = await enqueue_one(store, priority=5, scheduled_at=now - 2)
    assert await claim_all(store, limit=1) == [early_high.id]
    assert await claim_all(store) == [late_high.id, early_low.id, late_low.id]


async def test_jobs_equal_in_priority_and_schedule_are_claimed_in_id_order(store: Store) -> None:
    at = time.time() - 5
    ids = [job.id for job in [await enqueue_one(store, scheduled_at=at) for _ in range(4)]]
    assert await claim_all(store) == sorted(ids)


async def test_a_delayed_job_is_not_claimed_before_its_scheduled_time(store: Store) -> None:
    later = await enqueue_one(store, scheduled_at=time.time() + HOUR)
    now = await enqueue_one(store)
    assert await claim_all(store) == [now.id]
    assert await claim_all(store) == []
    stored = await store.get(later.id)
    assert stored is not None and stored.state is State.QUEUED


async def test_a_claim_takes_only_jobs_of_the_given_queues_and_names(store: Store) -> None:
    cpu_crunch = await enqueue_one(store, queue="cpu", job="crunch")
    await enqueue_one(store, queue="io", job="crunch")
    await enqueue_one(store, queue="cpu", job="crawl")
    assert await claim_all(store, queues=["cpu"], names=["crunch"]) == [cpu_crunch.id]
    assert await claim_all(store, queues=["cpu", "io"], names=["other"]) == []


async def test_a_claim_takes_at_most_limit_jobs(store: Store) -> None:
    await store.enqueue([new() for _ in range(5)])
    assert len(await claim_all(store, limit=2)) == 2
    assert len(await claim_all(store, limit=2)) == 2
    assert len(await claim_all(store, limit=2)) == 1


async def test_a_claim_with_no_queues_no_names_or_no_limit_takes_nothing(store: Store) -> None:
    await enqueue_one(store)
    assert await store.claim("w1", [], ["crunch"], 5, 30.0) == []
    assert await store.claim("w1", ["default"], [], 5, 30.0) == []
    assert await store.claim("w1", ["default"], ["crunch"], 0, 30.0) == []
    assert len(await claim_all(store)) == 1


async def test_a_running_job_is_not_claimed_again(store: Store) -> None:
    await claim_one(store)
    assert await claim_all(store) == []


async def test_every_claim_counts_an_attempt_and_gets_a_fresh_token(store: Store) -> None:
    first = await claim_one(store, max_attempts=3)
    await store.fail(first.job.id, first.token, {"type": "E"}, retry_at=time.time() - 1)
    second = await claim_one(store, first.job)
    assert second.job.attempts == 2
    assert second.token != first.token
    started = [e for e in await store.events(first.job.id) if e.type is EventType.STARTED]
    assert [e.data["attempt"] for e in started] == [1, 2]


async def test_jobs_claimed_together_get_distinct_tokens(store: Store) -> None:
    await store.enqueue([new() for _ in range(3)])
    claims = await store.claim("w1", ["default"], ["crunch"], 3, 30.0)
    assert len({c.token for c in claims}) == 3


# -- next_due ----------------------------------------------------------------------------


async def test_next_due_is_the_earliest_schedule_among_matching_queued_jobs(
    store: Store,
) -> None:
    now = time.time()
    await enqueue_one(store, scheduled_at=now + 50)
    await enqueue_one(store, scheduled_at=now + 20)
    await enqueue_one(store, scheduled_at=now + 5, queue="io")
    await enqueue_one(store, scheduled_at=now + 1, job="other")
    assert await store.next_due(["default"], ["crunch"]) == now + 20
    assert await store.next_due(["default", "io"], ["crunch", "other"]) == now + 1


async def test_next_due_is_none_when_nothing_is_queued(store: Store) -> None:
    assert await store.next_due(["default"], ["crunch"]) is None
    await claim_one(store)
    assert await store.next_due(["default"], ["crunch"]) is None


# -- heartbeat ---------------------------------------------------------------------------


async def test_a_heartbeat_extends_the_lease(store: Store) -> None:
    claim = await claim_one(store)
    reply = await store.heartbeat("w1", {claim.job.id: claim.token}, 10 * HOUR)
    assert reply.lost == frozenset() and reply.cancel_requested == frozenset()
    stored = await store.get(claim.job.id)
    assert stored is not None and claim.job.lease_expires_at is not None
    assert stored.lease_expires_at is not None
    assert stored.lease_expires_at > claim.job.lease_expires_at + 8 * HOUR
    assert stored.last_seq == claim.job.last_seq


async def test_a_heartbeat_reports_jobs_no_longer_held_as_lost(store: Store) -> None:
    held = await claim_one(store)
    finished = await claim_one(store)
    await store.finish(finished.job.id, finished.token, None)
    missing = new_job_id()
    reply = await store.heartbeat(
        "w1",
        {held.job.id: new_token(), finished.job.id: finished.token, missing: "t"},
        LONG_LEASE,
    )
    assert reply.lost == {held.job.id, finished.job.id, missing}
    stored = await store.get(held.job.id)
    assert stored == held.job


async def test_a_heartbeat_reports_a_requested_cancellation(store: Store) -> None:
    claim = await claim_one(store)
    other = await claim_one(store)
    await store.cancel(claim.job.id)
    tokens = {claim.job.id: claim.token, other.job.id: other.token}
    reply = await store.heartbeat("w1", tokens, LONG_LEASE)
    assert reply.cancel_requested == {claim.job.id}
    assert reply.lost == frozenset()


async def test_a_heartbeat_with_no_tokens_reports_nothing(store: Store) -> None:
    reply = await store.heartbeat("w1", {}, LONG_LEASE)
    assert not reply.lost and not reply.cancel_requested


# -- report ------------------------------------------------------------------------------


async def test_a_progress_report_updates_the_job_and_appends_its_event(store: Store) -> None:
    claim = await claim_one(store)
    await store.report(
        claim.job.id,
        claim.token,
        [
            EventDraft(EventType.PROGRESS, {"current": 1, "total": 10}),
            EventDraft(EventType.PROGRESS, {"current": 5, "total": 10, "message": "half"}),
        ],
    )
    stored = await store.get(claim.job.id)
    assert stored is not None
    assert stored.progress == Progress(5, 10, "half")
    events = await store.events(claim.job.id, after=2)
    assert [(e.seq, e.type) for e in events] == [(3, EventType.PROGRESS), (4, EventType.PROGRESS)]
    assert events[1].data == {"current": 5, "total": 10, "message": "half"}
    assert stored.last_seq == 4


async def test_an_output_report_appends_an_output_event(store: Store) -> None:
    claim = await claim_one(store)
    await store.report(claim.job.id, claim.token, [EventDraft(EventType.OUTPUT, {"url": "u"})])
    [event] = await store.events(claim.job.id, after=2)
    assert (event.type, event.data) == (EventType.OUTPUT, {"url": "u"})
    stored = await store.get(claim.job.id)
    assert stored is not None and stored.progress is None


async def test_a_report_of_no_events_writes_nothing(store: Store) -> None:
    claim = await claim_one(store)
    await store.report(claim.job.id, claim.token, [])
    assert await store.get(claim.job.id) == claim.job


async def test_a_report_of_a_state_event_is_refused(store: Store) -> None:
    claim = await claim_one(store)
    with pytest.raises(InvalidTransition):
        await store.report(claim.job.id, claim.token, [EventDraft(EventType.SUCCEEDED)])
    assert await store.get(claim.job.id) == claim.job


async def test_a_report_about_an_unknown_job_raises_job_not_found(store: Store) -> None:
    with pytest.raises(JobNotFound):
        await store.report(new_job_id(), "t", [EventDraft(EventType.OUTPUT)])


# -- finish, fail, release, mark_cancelled ------------------------------------------------


async def test_finish_moves_the_job_to_succeeded_with_its_result(store: Store) -> None:
    claim = await claim_one(store)
    done = await store.finish(claim.job.id, claim.token, {"total": 42})
    stored = await store.get(claim.job.id)
    assert stored == done
    assert stored.state is State.SUCCEEDED and stored.result == {"total": 42}
    assert stored.finished_at is not None and stored.claim_token is None
    assert stored.lease_expires_at is None and stored.worker_id is None
    last = (await store.events(claim.job.id))[-1]
    # A small result rides in the event: reading the log costs no further read.
    assert (last.type, last.data) == (EventType.SUCCEEDED, {"result": {"total": 42}, "attempt": 1})


async def test_the_succeeded_event_refers_to_the_result_rather_than_storing_a_copy(
    store: Store,
) -> None:
    claim = await claim_one(store)
    large = {"rows": ["x" * 1000] * 200}  # 200 kB, kept once
    await store.finish(claim.job.id, claim.token, large)
    [last] = (await store.events(claim.job.id))[-1:]
    assert last.data == {"attempt": 1, "result_ref": True}
    assert len(json.dumps(last.data)) < 100
    [fed] = [e for e in await store.feed(0) if e.job_id == claim.job.id and e.seq == last.seq]
    assert fed.data == {"attempt": 1, "result_ref": True}
    # What every channel reads: the event with the job's result put back.
    [shown] = await resolve_results(store, [last])
    assert shown.data == {"result": large, "attempt": 1}
    [shown_fed] = await resolve_results(store, [fed])
    assert (shown_fed.data, shown_fed.cursor) == (shown.data, fed.cursor)


async def test_a_result_that_is_not_json_is_refused_and_the_job_stays_running(
    store: Store,
) -> None:
    claim = await claim_one(store)
    with pytest.raises((TypeError, ValueError)):
        await store.finish(claim.job.id, claim.token, {"when": object()})
    assert await store.get(claim.job.id) == claim.job
    assert await types_of(store, claim.job.id) == [EventType.QUEUED, EventType.STARTED]


async def test_a_refused_write_fails_alone_not_the_writes_made_beside_it(store: Store) -> None:
    claim = await claim_one(store)
    batch = [new() for _ in range(3)]
    outcomes = await asyncio.gather(
        store.finish(claim.job.id, claim.token, object()),
        store.finish(claim.job.id, new_token(), 1),
        *(store.enqueue([item]) for item in batch),
        return_exceptions=True,
    )
    for item, outcome in zip(batch, outcomes[2:], strict=True):
        assert not isinstance(outcome, BaseException)
        assert await store.get(item.id) is not None
    assert isinstance(outcomes[0], TypeError | ValueError)
    assert isinstance(outcomes[1], StaleClaim)
    assert await store.get(claim.job.id) == claim.job


async def test_a_failure_with_retry_at_requeues_the_job_with_a_retrying_event(
    store: Store,
) -> None:
    claim = await claim_one(store, max_attempts=2)
    retry_at = time.time() + 60
    error = {"type": "ValueError", "message": "bad"}
    job = await store.fail(claim.job.id, claim.token, error, retry_at)
    assert await store.get(claim.job.id) == job
    assert job.state is State.QUEUED and job.scheduled_at == retry_at
    assert (job.attempts, job.error, job.claim_token, job.finished_at) == (1, error, None, None)
    last = (await store.events(job.id))[-1]
    assert last.type is EventType.RETRYING
    assert last.data == {"attempt": 1, "error": error, "next_run_at": retry_at}
    assert await claim_all(store) == []  # not due before retry_at


async def test_a_failure_without_retry_at_fails_the_job(store: Store) -> None:
    claim = await claim_one(store, max_attempts=3)
    error = {"type": "ValueError", "message": "bad"}
    job = await store.fail(claim.job.id, claim.token, error, None)
    assert job.state is State.FAILED and job.error == error and job.finished_at is not None
    assert (await store.events(job.id))[-1].type is EventType.FAILED


async def test_a_failure_of_the_last_attempt_fails_the_job_even_with_retry_at(
    store: Store,
) -> None:
    claim = await claim_one(store, max_attempts=2)
    await store.fail(claim.job.id, claim.token, {"type": "E"}, time.time() - 1)
    second = await claim_one(store, claim.job)
    job = await store.fail(second.job.id, second.token, {"type": "E"}, time.time() - 1)
    assert job.state is State.FAILED and job.attempts == 2
    assert await types_of(store, job.id) == [
        EventType.QUEUED,
        EventType.STARTED,
        EventType.RETRYING,
        EventType.STARTED,
        EventType.FAILED,
    ]


async def test_release_requeues_the_job_now_without_charging_the_attempt(store: Store) -> None:
    claim = await claim_one(store, max_attempts=1)
    before = time.time()
    job = await store.release(claim.job.id, claim.token)
    assert job.state is State.QUEUED and job.attempts == 0 and job.claim_token is None
    assert before <= job.scheduled_at <= time.time()
    last = (await store.events(job.id))[-1]
    assert (last.type, last.data) == (EventType.QUEUED, {"released": True, "worker": "w1"})
    again = await claim_one(store, job)
    assert again.job.attempts == 1  # a single-attempt job still gets its one attempt


async def test_mark_cancelled_moves_a_running_job_to_cancelled(store: Store) -> None:
    claim = await claim_one(store)
    await store.cancel(claim.job.id)
    job = await store.mark_cancelled(claim.job.id, claim.token)
    assert job.state is State.CANCELLED and job.finished_at is not None
    assert job.claim_token is None
    assert (await store.events(job.id))[-1].type is EventType.CANCELLED


FENCED = {
    "finish": lambda s, job_id, token: s.finish(job_id, token, 1),
    "fail": lambda s, job_id, token: s.fail(job_id, token, {"type": "E"}, time.time()),
    "release": lambda s, job_id, token: s.release(job_id, token),
    "mark_cancelled": lambda s, job_id, token: s.mark_cancelled(job_id, token),
    "report": lambda s, job_id, token: s.report(
        job_id, token, [EventDraft(EventType.PROGRESS, {"current": 1})]
    ),
}


@pytest.mark.parametrize("write", list(FENCED))
async def test_a_fenced_write_with_a_wrong_token_is_refused_and_changes_nothing(
    store: Store, write: str
) -> None:
    claim = await claim_one(store)
    with pytest.raises(StaleClaim):
        await FENCED[write](store, claim.job.id, new_token())
    assert await store.get(claim.job.id) == claim.job
    assert len(await store.events(claim.job.id)) == 2


@pytest.mark.parametrize("write", list(FENCED))
async def test_a_fenced_write_from_a_replaced_attempt_is_refused(store: Store, write: str) -> None:
    [enqueued] = await store.enqueue([new(max_attempts=2)])
    [zombie] = await store.claim("w1", ["default"], ["crunch"], 1, -5.0)
    await store.reap(now=time.time() - 2.0)  # long after the lease: due again now
    [current] = await store.claim("w2", ["default"], ["crunch"], 1, LONG_LEASE)
    assert current.job.id == enqueued.job.id
    with pytest.raises(StaleClaim):
        await FENCED[write](store, enqueued.job.id, zombie.token)
    assert await store.get(enqueued.job.id) == current.job


@pytest.mark.parametrize("write", list(FENCED))
async def test_a_fenced_write_about_a_finished_job_is_refused(store: Store, write: str) -> None:
    claim = await claim_one(store)
    done = await store.finish(claim.job.id, claim.token, "first")
    with pytest.raises(StaleClaim):
        await FENCED[write](store, claim.job.id, claim.token)
    assert await store.get(claim.job.id) == done


# -- cancel ------------------------------------------------------------------------------


async def test_cancelling_a_queued_job_cancels_it_at_once(store: Store) -> None:
    job = await enqueue_one(store)
    cancelled = await store.cancel(job.id)
    assert cancelled.state is State.CANCELLED and cancelled.finished_at is not None
    assert await store.get(job.id) == cancelled
    assert await types_of(store, job.id) == [EventType.QUEUED, EventType.CANCELLED]
    assert await claim_all(store) == []


async def test_cancelling_a_running_job_flags_it_and_leaves_it_running(store: Store) -> None:
    claim = await claim_one(store)
    job = await store.cancel(claim.job.id)
    assert job.state is State.RUNNING and job.cancel_requested
    assert job.claim_token == claim.token
    assert await types_of(store, job.id) == [EventType.QUEUED, EventType.STARTED]


async def test_cancelling_a_terminal_job_raises_already_terminal(store: Store) -> None:
    claim = await claim_one(store)
    done = await store.finish(claim.job.id, claim.token, 1)
    with pytest.raises(AlreadyTerminal):
        await store.cancel(claim.job.id)
    assert await store.get(claim.job.id) == done


async def test_cancelling_another_owners_job_raises_job_not_found(store: Store) -> None:
    job = await enqueue_one(store, owner="alice")
    with pytest.raises(JobNotFound):
        await store.cancel(job.id, owner="bob")
    assert await store.get(job.id) == job
    assert (await store.cancel(job.id, owner="alice")).state is State.CANCELLED


async def test_cancelling_an_unknown_job_raises_job_not_found(store: Store) -> None:
    with pytest.raises(JobNotFound):
        await store.cancel(new_job_id())


async def test_a_retry_after_a_cancel_request_ends_the_job_cancelled(store: Store) -> None:
    claim = await claim_one(store, max_attempts=3)
    await store.cancel(claim.job.id)
    job = await store.fail(claim.job.id, claim.token, {"type": "E"}, time.time() - 1)
    assert job.state is State.CANCELLED and job.error == {"type": "E"}
    assert await claim_all(store) == []


async def test_a_release_after_a_cancel_request_ends_the_job_cancelled(store: Store) -> None:
    claim = await claim_one(store)
    await store.cancel(claim.job.id)
    job = await store.release(claim.job.id, claim.token)
    assert job.state is State.CANCELLED
    assert await claim_all(store) == []


# -- get and list ------------------------------------------------------------------------


async def test_get_shows_a_job_to_its_owner_and_to_no_other(store: Store) -> None:
    job = await enqueue_one(store, owner="alice")
    assert await store.get(job.id) == job
    assert await store.get(job.id, owner="alice") == job
    assert await store.get(job.id, owner="bob") is None
    assert await store.get(new_job_id()) is None


async def test_list_shows_jobs_newest_first(store: Store) -> None:
    ids = [(await enqueue_one(store)).id for _ in range(4)]
    page = await store.list(ListQuery())
    assert [job.id for job in page.items] == sorted(ids, reverse=True)
    assert page.next_cursor is None


async def test_list_filters_by_state_job_queue_and_owner(store: Store) -> None:
    a = await enqueue_one(store, job="crunch", queue="cpu", owner="alice")
    b = await enqueue_one(store, job="crawl", queue="io", owner="alice")
    c = await enqueue_one(store, job="crunch", queue="io", owner="bob")
    await store.cancel(b.id)

    async def ids(**query: Any) -> set[str]:
        return {job.id for job in (await store.list(ListQuery(**query))).items}

    assert await ids() == {a.id, b.id, c.id}
    assert await ids(states=(State.QUEUED,)) == {a.id, c.id}
    assert await ids(states=(State.CANCELLED, State.QUEUED)) == {a.id, b.id, c.id}
    assert await ids(states=(State.RUNNING,)) == set()
    assert await ids(job="crunch") == {a.id, c.id}
    assert await ids(queue="io") == {b.id, c.id}
    assert await ids(owner="alice") == {a.id, b.id}
    assert await ids(owner="alice", queue="io", states=(State.QUEUED,)) == set()
    assert await ids(owner="bob", job="crunch", queue="io") == {c.id}


async def test_list_pages_cover_every_job_exactly_once(store: Store) -> None:
    batch = [new() for _ in range(11)]
    await store.enqueue(batch)
    ids = {item.id for item in batch}
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.list(ListQuery(limit=4, before_id=cursor))
        seen.extend(job.id for job in page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    assert pages == 3


async def test_a_page_that_ends_exactly_at_the_last_job_has_no_cursor(store: Store) -> None:
    await store.enqueue([new() for _ in range(4)])
    page = await store.list(ListQuery(limit=4))
    assert len(page.items) == 4 and page.next_cursor is None


async def test_list_pagination_keeps_its_filters(store: Store) -> None:
    mine = {(await enqueue_one(store, owner="alice")).id for _ in range(5)}
    await store.enqueue([new(owner="bob") for _ in range(5)])
    first = await store.list(ListQuery(owner="alice", limit=3))
    second = await store.list(ListQuery(owner="alice", limit=3, before_id=first.next_cursor))
    assert {job.id for job in first.items + second.items} == mine
    assert second.next_cursor is None


# -- events ------------------------------------------------------------------------------


async def test_events_after_n_are_the_later_events_in_order_up_to_limit(store: Store) -> None:
    claim = await claim_one(store)
    outputs = [EventDraft(EventType.OUTPUT, {"i": i}) for i in range(5)]
    await store.report(claim.job.id, claim.token, outputs)
    assert [e.seq for e in await store.events(claim.job.id)] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.seq for e in await store.events(claim.job.id, after=3, limit=2)] == [4, 5]
    assert [e.data["i"] for e in await store.events(claim.job.id, after=5)] == [3, 4]
    assert await store.events(claim.job.id, after=7) == []
    assert all(e.job_id == claim.job.id for e in await store.events(claim.job.id))


async def test_events_of_an_unknown_job_are_empty(store: Store) -> None:
    assert await store.events(new_job_id()) == []


async def test_event_cursors_grow_across_the_whole_store(store: Store) -> None:
    first = await claim_one(store)
    second = await enqueue_one(store)
    await store.report(first.job.id, first.token, [EventDraft(EventType.OUTPUT, {})])
    await store.cancel(second.id)
    events = [*await store.events(first.job.id), *await store.events(second.id)]
    by_cursor = sorted(events, key=lambda e: e.cursor)
    assert len({e.cursor for e in events}) == 5 and by_cursor[0].cursor > 0
    assert [(e.job_id, e.type) for e in by_cursor] == [
        (first.job.id, EventType.QUEUED),
        (first.job.id, EventType.STARTED),
        (second.id, EventType.QUEUED),
        (first.job.id, EventType.OUTPUT),
        (second.id, EventType.CANCELLED),
    ]


# -- feed and last_cursor ---------------------------------------------------------------


async def test_last_cursor_is_0_in_an_empty_store(store: Store) -> None:
    assert await store.last_cursor() == 0
    assert await store.feed(after=0) == []


async def test_the_feed_is_every_jobs_events_in_cursor_order(store: Store) -> None:
    first = await claim_one(store)
    second = await enqueue_one(store)
    await store.report(first.job.id, first.token, [EventDraft(EventType.OUTPUT, {"x": 1})])
    await store.cancel(second.id)
    feed = await store.feed(after=0)
    assert [(e.job_id, e.seq, e.type) for e in feed] == [
        (first.job.id, 1, EventType.QUEUED),
        (first.job.id, 2, EventType.STARTED),
        (second.id, 1, EventType.QUEUED),
        (first.job.id, 3, EventType.OUTPUT),
        (second.id, 2, EventType.CANCELLED),
    ]
    assert feed == sorted(
        [*await store.events(first.job.id), *await store.events(second.id)],
        key=lambda e: e.cursor,
    )
    assert await store.last_cursor() == feed[-1].cursor


async def test_the_feed_resumes_after_a_cursor_and_stops_at_limit(store: Store) -> None:
    await store.enqueue([new() for _ in range(5)])
    feed = await store.feed(after=0)
    assert [e.cursor for e in await store.feed(after=feed[1].cursor, limit=2)] == [
        feed[2].cursor,
        feed[3].cursor,
    ]
    assert await store.feed(after=feed[-1].cursor) == []
    assert await store.feed(after=0, limit=0) == []


async def test_the_feed_of_an_owner_holds_only_the_events_of_their_jobs(store: Store) -> None:
    mine = await enqueue_one(store, owner="alice")
    await enqueue_one(store, owner="bob")
    await store.cancel(mine.id)
    feed = await store.feed(after=0, owner="alice")
    assert [(e.job_id, e.type) for e in feed] == [
        (mine.id, EventType.QUEUED),
        (mine.id, EventType.CANCELLED),
    ]
    assert await store.feed(after=0, owner="mallory") == []


async def test_pruned_jobs_leave_the_feed(store: Store) -> None:
    gone = await enqueue_one(store)
    await store.cancel(gone.id)
    kept = await enqueue_one(store)
    await store.prune(finished_before=time.time() + 1)
    assert [e.job_id for e in await store.feed(after=0)] == [kept.id]


# -- reap --------------------------------------------------------------------------------


async def expired_claim(store: Store, **fields: Any) -> Claim:
    """A claim whose lease has already run out (its worker stopped heartbeating)."""
    job = await enqueue_one(store, **fields)
    [claim] = await store.claim("w1", [job.queue], [job.job], 1, 1.0)
    return claim


async def test_reap_requeues_a_job_whose_lease_expired_without_charging_the_attempt(
    store: Store,
) -> None:
    claim = await expired_claim(store, max_attempts=1)  # retries=0: the default
    at = time.time() + 10
    [reaped] = await store.reap(now=at)
    assert reaped.id == claim.job.id and await store.get(claim.job.id) == reaped
    assert reaped.state is State.QUEUED and reaped.attempts == 0 and reaped.crashes == 1
    assert at <= reaped.scheduled_at <= at + model.CRASH_SPREAD_SECONDS
    assert reaped.claim_token is None
    assert reaped.error is not None and reaped.error["type"] == "LeaseExpired"
    last = (await store.events(claim.job.id))[-1]
    assert (last.type, last.at) == (EventType.QUEUED, at)
    assert last.data["next_run_at"] == reaped.scheduled_at
    assert {k: last.data[k] for k in ("lost", "attempt", "crashes", "worker")} == {
        "lost": True,
        "attempt": 1,
        "crashes": 1,
        "worker": "w1",
    }
    with pytest.raises(StaleClaim):
        await store.finish(claim.job.id, claim.token, 1)


async def lose_lease(store: Store, job: Job) -> Job:
    """Claim the job and lose its lease: a lease that ran out long ago is reaped as of a
    moment past it, so the job (spread after the reap by at most a second) is due now."""
    await store.claim("w1", [job.queue], [job.job], 1, -5.0)
    [reaped] = await store.reap(now=time.time() - 2.0)
    assert reaped.id == job.id
    return reaped


async def test_a_job_without_retries_runs_again_after_a_lost_lease_and_succeeds(
    store: Store,
) -> None:
    job = await enqueue_one(store, max_attempts=1)
    await lose_lease(store, job)
    [again] = await store.claim("w2", [job.queue], [job.job], 1, LONG_LEASE)
    assert again.job.attempts == 1 and again.job.crashes == 1
    done = await store.finish(again.job.id, again.token, 7)
    assert (done.state, done.result, done.crashes) == (State.SUCCEEDED, 7, 1)


async def test_reap_fails_a_job_that_spent_its_crash_budget(store: Store) -> None:
    job = await enqueue_one(store, max_attempts=5)
    for crash in range(1, model.DEFAULT_MAX_CRASHES + 1):
        reaped = await lose_lease(store, job)
        assert reaped.crashes == crash and (await store.events(job.id))[-2].data["attempt"] == 1
    assert reaped.state is State.FAILED and reaped.attempts == 1
    assert reaped.error is not None and reaped.error["type"] == "CrashBudgetExhausted"
    assert f"lost its worker {model.DEFAULT_MAX_CRASHES} times" in reaped.error["message"]
    assert reaped.finished_at is not None
    last = (await store.events(job.id))[-1]
    assert last.type is EventType.FAILED and last.data["lost"] is True
    assert await store.get(job.id) == reaped


async def test_reap_honours_a_crash_budget_set_on_the_job(store: Store) -> None:
    claim = await expired_claim(store, max_attempts=3, options={"max_crashes": 1})
    [reaped] = await store.reap(now=time.time() + 10)
    assert reaped.state is State.FAILED and reaped.crashes == 1
    assert reaped.error is not None and reaped.error["type"] == "CrashBudgetExhausted"
    assert claim.job.max_crashes == 1


async def test_reap_cancels_a_job_whose_cancel_was_requested(store: Store) -> None:
    claim = await expired_claim(store, max_attempts=3)
    await store.cancel(claim.job.id)
    [reaped] = await store.reap(now=time.time() + 10)
    assert reaped.state is State.CANCELLED
    assert (await store.events(claim.job.id))[-1].type is EventType.CANCELLED


async def test_reap_leaves_live_leases_and_other_states_alone(store: Store) -> None:
    live = await claim_one(store)
    queued = await enqueue_one(store, job="other")
    assert await store.reap(now=time.time()) == []
    assert await store.reap() == []
    assert await store.get(live.job.id) == live.job
    assert await store.get(queued.id) == queued


async def test_reap_without_now_uses_the_stores_clock(store: Store) -> None:
    job = await enqueue_one(store, max_attempts=2)
    [claim] = await store.claim("w1", ["default"], ["crunch"], 1, 0.0)
    before = time.time()
    [reaped] = await store.reap()
    assert reaped.id == claim.job.id == job.id and reaped.state is State.QUEUED
    # Due again within the crash spread of the store's clock (PostgreSQL: the server's).
    assert before - 1.0 <= reaped.scheduled_at <= time.time() + 1.0 + model.CRASH_SPREAD_SECONDS


# -- prune -------------------------------------------------------------------------------


async def test_prune_deletes_only_jobs_finished_before_the_cutoff(store: Store) -> None:
    old = await claim_one(store)
    await store.finish(old.job.id, old.token, 1)
    cancelled = await store.cancel((await enqueue_one(store)).id)
    running = await claim_one(store)
    queued = await enqueue_one(store, job="other")
    assert cancelled.finished_at is not None
    assert await store.prune(finished_before=cancelled.finished_at) == 1
    assert await store.get(old.job.id) is None
    assert await store.events(old.job.id) == []
    assert await store.get(cancelled.id) is not None
    assert await store.prune(finished_before=time.time() + 1) == 1
    assert await store.get(cancelled.id) is None and await store.events(cancelled.id) == []
    assert await store.get(running.job.id) == running.job
    assert await store.get(queued.id) == queued
    assert await store.prune(finished_before=time.time() + 1) == 0


async def test_a_pruned_jobs_idempotency_key_can_be_used_again(store: Store) -> None:
    [first] = await store.enqueue([new(idempotency_key="k", fingerprint="f")])
    await store.cancel(first.job.id)
    await store.prune(finished_before=time.time() + 1)
    [again] = await store.enqueue([new(idempotency_key="k", fingerprint="g")])
    assert again.created and again.job.id != first.job.id


# -- notices -----------------------------------------------------------------------------


async def test_enqueue_notifies_the_queue_and_the_job(store: Store) -> None:
    recorder = Recorder()
    store.add_listener(recorder)
    job = await enqueue_one(store, queue="cpu")
    assert Notice(NoticeKind.JOBS, "cpu") in recorder.notices
    assert Notice(NoticeKind.JOB, job.id) in recorder.notices


async def test_every_change_to_a_job_notifies_the_job(store: Store) -> None:
    recorder = Recorder()
    store.add_listener(recorder)
    claim = await claim_one(store)
    for write in (
        lambda: store.report(claim.job.id, claim.token, [EventDraft(EventType.OUTPUT, {})]),
        lambda: store.finish(claim.job.id, claim.token, 1),
    ):
        recorder.clear()
        await write()
        assert recorder.notices == [Notice(NoticeKind.JOB, claim.job.id)]


async def test_a_cancel_request_for_a_running_job_sends_a_cancel_notice(store: Store) -> None:
    claim = await claim_one(store)
    recorder = Recorder()
    store.add_listener(recorder)
    await store.cancel(claim.job.id)
    assert Notice(NoticeKind.CANCEL, claim.job.id) in recorder.notices
    assert Notice(NoticeKind.JOB, claim.job.id) in recorder.notices


async def test_a_retry_notifies_the_queue_again(store: Store) -> None:
    claim = await claim_one(store, max_attempts=2, queue="io")
    recorder = Recorder()
    store.add_listener(recorder)
    await store.fail(claim.job.id, claim.token, {"type": "E"}, time.time())
    assert Notice(NoticeKind.JOBS, "io") in recorder.notices


async def test_a_refused_write_sends_no_notice(store: Store) -> None:
    claim = await claim_one(store)
    recorder = Recorder()
    store.add_listener(recorder)
    with pytest.raises(StaleClaim):
        await store.finish(claim.job.id, new_token(), 1)
    assert recorder.notices == []


async def test_a_removed_listener_hears_nothing_more(store: Store) -> None:
    recorder = Recorder()
    store.add_listener(recorder)
    store.remove_listener(recorder)
    await enqueue_one(store)
    assert recorder.notices == []


# -- webhook outbox --------------------------------------------------------------------------

HOOK_URL = "https://hooks.example.com/jobwire"


def hooked(events: list[str] | None = None, url: str = HOOK_URL, **fields: Any) -> NewJob:
    """A job whose options ask for webhooks (as the submit check stores them)."""
    return new(options={"webhook": {"url": url, "events": events}}, **fields)


async def hooked_claim(store: Store, events: list[str] | None = None, **fields: Any) -> Claim:
    [enqueued] = await store.enqueue([hooked(events, **fields)])
    return await claim_one(store, enqueued.job)


async def claim_delivery(store: Store, lease: float = LONG_LEASE) -> Delivery:
    [delivery] = await store.claim_deliveries(10, lease)
    return delivery


async def finished_with_a_claimed_delivery(store: Store) -> tuple[Claim, Delivery, str]:
    """A hooked job that succeeded, and its delivery claimed: (claim, delivery, token)."""
    claim = await hooked_claim(store)
    await store.finish(claim.job.id, claim.token, 1)
    delivery = await claim_delivery(store)
    assert delivery.claim_token is not None
    return claim, delivery, delivery.claim_token


async def test_a_terminal_event_of_a_job_with_a_webhook_creates_a_delivery_in_the_same_write(
    store: Store,
) -> None:
    claim = await hooked_claim(store)
    assert await store.deliveries_for(claim.job.id) == []
    before = time.time()
    done = await store.finish(claim.job.id, claim.token, {"answer": 42})
    [delivery] = await store.deliveries_for(claim.job.id)
    assert (delivery.job_id, delivery.seq, delivery.event) == (done.id, done.last_seq, "succeeded")
    assert delivery.id == f"msg_{done.id}_{done.last_seq}"
    assert (delivery.url, delivery.status, delivery.attempts) == (
        HOOK_URL,
        DeliveryStatus.PENDING,
        0,
    )
    assert delivery.next_attempt_at is not None
    assert before <= delivery.created_at <= delivery.next_attempt_at <= time.time()
    body = json.loads(delivery.body)
    assert body["type"] == "job.succeeded"
    assert body["timestamp"].endswith("Z")
    assert body["data"]["id"] == done.id and body["data"]["seq"] == done.last_seq
    assert (body["data"]["state"], body["data"]["result"]) == ("succeeded", {"answer": 42})
    assert body["data"]["event"] == {"result": {"answer": 42}, "attempt": 1}


@pytest.mark.parametrize("ending", ["fail", "cancel"])
async def test_failed_and_cancelled_are_terminal_events_sent_by_default(
    store: Store, ending: str
) -> None:
    claim = await hooked_claim(store)
    if ending == "fail":
        await store.fail(claim.job.id, claim.token, {"type": "E", "message": "m"}, None)
    else:
        await store.cancel(claim.job.id)
        await store.mark_cancelled(claim.job.id, claim.token)
    [delivery] = await store.deliveries_for(claim.job.id)
    assert delivery.event == {"fail": "failed", "cancel": "cancelled"}[ending]


async def test_only_the_listed_event_types_create_deliveries(store: Store) -> None:
    claim = await hooked_claim(store, events=["progress", "succeeded"])
    await store.report(
        claim.job.id,
        claim.token,
        [
            EventDraft(EventType.PROGRESS, {"current": 1}),
            EventDraft(EventType.OUTPUT, {"x": 1}),
            EventDraft(EventType.PROGRESS, {"current": 2}),
        ],
    )
    await store.finish(claim.job.id, claim.token, 1)
    deliveries = await store.deliveries_for(claim.job.id)
    assert [(d.seq, d.event) for d in deliveries] == [
        (3, "progress"),
        (5, "progress"),
        (6, "succeeded"),
    ]
    assert len({d.id for d in deliveries}) == 3


async def test_the_queued_event_at_enqueue_creates_a_delivery_when_listed(store: Store) -> None:
    [enqueued] = await store.enqueue([hooked(["queued"])])
    [delivery] = await store.deliveries_for(enqueued.job.id)
    assert (delivery.seq, delivery.event) == (1, "queued")


async def test_the_started_event_at_a_claim_creates_a_delivery_when_listed(store: Store) -> None:
    [plain] = await store.enqueue([new(priority=1)])
    [wanting] = await store.enqueue([hooked(["started"])])
    claims = await store.claim("w1", ["default"], ["crunch"], 2, LONG_LEASE)
    assert [c.job.id for c in claims] == [plain.job.id, wanting.job.id]
    [delivery] = await store.deliveries_for(wanting.job.id)
    assert (delivery.seq, delivery.event) == (2, "started")
    assert await store.deliveries_for(plain.job.id) == []


@pytest.mark.parametrize("options", [{}, {"webhook": "x"}, {"webhook": {"events": None}}])
async def test_a_job_without_a_usable_webhook_creates_no_delivery(
    store: Store, options: dict[str, Any]
) -> None:
    claim = await claim_one(store, options=options)
    await store.finish(claim.job.id, claim.token, 1)
    assert await store.deliveries_for(claim.job.id) == []
    assert await store.claim_deliveries(10, LONG_LEASE) == []
    assert await store.next_delivery_at() is None


async def test_a_refused_write_creates_no_delivery(store: Store) -> None:
    claim = await hooked_claim(store)
    with pytest.raises(StaleClaim):
        await store.finish(claim.job.id, new_token(), 1)
    assert await store.deliveries_for(claim.job.id) == []


async def test_a_write_that_creates_deliveries_sends_a_webhooks_notice(store: Store) -> None:
    claim = await hooked_claim(store, events=["succeeded"])
    recorder = Recorder()
    store.add_listener(recorder)
    await store.report(claim.job.id, claim.token, [EventDraft(EventType.OUTPUT, {})])
    assert Notice(NoticeKind.WEBHOOKS, claim.job.id) not in recorder.notices
    await store.finish(claim.job.id, claim.token, 1)
    assert Notice(NoticeKind.WEBHOOKS, claim.job.id) in recorder.notices


async def test_a_claimed_delivery_is_leased_and_not_claimed_again(store: Store) -> None:
    claim = await hooked_claim(store)
    await store.finish(claim.job.id, claim.token, 1)
    delivery = await claim_delivery(store)
    assert delivery.claim_token is not None and delivery.lease_expires_at is not None
    assert delivery.attempts == 0
    assert await store.claim_deliveries(10, LONG_LEASE) == []
    assert (await store.deliveries_for(claim.job.id))[0].claim_token == delivery.claim_token


async def test_a_delivery_whose_lease_ran_out_is_claimed_again_and_the_old_token_refused(
    store: Store,
) -> None:
    claim = await hooked_claim(store)
    await store.finish(claim.job.id, claim.token, 1)
    first = await claim_delivery(store, lease=0.0)
    second = await claim_delivery(store)
    assert second.id == first.id and second.claim_token != first.claim_token
    assert first.claim_token is not None
    with pytest.raises(StaleClaim):
        await store.record_delivery_attempt(
            first.id,
            first.claim_token,
            ok=True,
            status_code=200,
            error=None,
            next_attempt_at=None,
        )


async def test_claims_take_the_earliest_due_deliveries_up_to_the_limit(store: Store) -> None:
    ids = []
    for _ in range(3):
        claim = await hooked_claim(store)
        await store.finish(claim.job.id, claim.token, 1)
        ids.append((await store.deliveries_for(claim.job.id))[0].id)
    first = await store.claim_deliveries(2, LONG_LEASE)
    rest = await store.claim_deliveries(2, LONG_LEASE)
    assert [d.id for d in first] == ids[:2] and [d.id for d in rest] == ids[2:]
    assert await store.claim_deliveries(0, LONG_LEASE) == []


async def test_a_successful_attempt_marks_the_delivery_delivered(store: Store) -> None:
    claim, delivery, token = await finished_with_a_claimed_delivery(store)
    recorded = await store.record_delivery_attempt(
        delivery.id,
        token,
        ok=True,
        status_code=204,
        error=None,
        next_attempt_at=None,
    )
    assert (recorded.status, recorded.attempts, recorded.last_status_code) == (
        DeliveryStatus.DELIVERED,
        1,
        204,
    )
    assert recorded.claim_token is None and recorded.next_attempt_at is None
    assert recorded.last_attempt_at is not None
    assert await store.deliveries_for(claim.job.id) == [recorded]
    assert await store.claim_deliveries(10, LONG_LEASE) == []
    assert await store.next_delivery_at() is None


async def test_a_failed_attempt_with_a_next_time_stays_pending_until_then(store: Store) -> None:
    _claim, delivery, token = await finished_with_a_claimed_delivery(store)
    later = time.time() + HOUR
    recorded = await store.record_delivery_attempt(
        delivery.id,
        token,
        ok=False,
        status_code=500,
        error="HTTP 500",
        next_attempt_at=later,
    )
    assert (recorded.status, recorded.attempts) == (DeliveryStatus.PENDING, 1)
    assert (recorded.last_status_code, recorded.last_error) == (500, "HTTP 500")
    assert recorded.next_attempt_at == later and recorded.claim_token is None
    assert await store.claim_deliveries(10, LONG_LEASE) == []
    assert await store.next_delivery_at() == later


async def test_a_failed_attempt_due_now_is_claimed_again_with_its_attempts_counted(
    store: Store,
) -> None:
    _claim, delivery, token = await finished_with_a_claimed_delivery(store)
    await store.record_delivery_attempt(
        delivery.id,
        token,
        ok=False,
        status_code=None,
        error="connection refused",
        next_attempt_at=time.time() - 1,
    )
    again = await claim_delivery(store)
    assert (again.id, again.attempts, again.last_error) == (delivery.id, 1, "connection refused")


async def test_a_failed_attempt_without_a_next_time_fails_the_delivery(store: Store) -> None:
    _claim, delivery, token = await finished_with_a_claimed_delivery(store)
    recorded = await store.record_delivery_attempt(
        delivery.id,
        token,
        ok=False,
        status_code=302,
        error="redirect",
        next_attempt_at=None,
    )
    assert (recorded.status, recorded.next_attempt_at) == (DeliveryStatus.FAILED, None)
    assert await store.next_delivery_at() is None
    with pytest.raises(StaleClaim):
        await store.record_delivery_attempt(
            delivery.id,
            token,
            ok=True,
            status_code=200,
            error=None,
            next_attempt_at=None,
        )


async def test_a_410_disables_the_url_for_the_job_and_no_more_deliveries_are_made(
    store: Store,
) -> None:
    claim = await hooked_claim(store, events=["progress", "succeeded"])
    other = await hooked_claim(store, events=["progress"])
    progress = [EventDraft(EventType.PROGRESS, {"current": 1})]
    await store.report(claim.job.id, claim.token, progress)
    await store.report(other.job.id, other.token, progress)
    await store.report(claim.job.id, claim.token, progress)
    [first, other_delivery, second] = (
        await store.claim_deliveries(1, LONG_LEASE)
        + (await store.claim_deliveries(1, LONG_LEASE))
        + await store.claim_deliveries(1, LONG_LEASE)
    )
    assert first.claim_token is not None
    recorded = await store.record_delivery_attempt(
        first.id,
        first.claim_token,
        ok=False,
        status_code=410,
        error="gone",
        next_attempt_at=time.time(),
        disable_url=True,
    )
    assert (recorded.status, recorded.next_attempt_at) == (DeliveryStatus.DISABLED, None)
    [_, still] = await store.deliveries_for(claim.job.id)
    assert still.id == second.id and still.status is DeliveryStatus.DISABLED
    assert second.claim_token is not None
    with pytest.raises(StaleClaim):  # its sender is told it no longer holds it
        await store.record_delivery_attempt(
            second.id,
            second.claim_token,
            ok=True,
            status_code=200,
            error=None,
            next_attempt_at=None,
        )
    await store.report(claim.job.id, claim.token, progress)
    await store.finish(claim.job.id, claim.token, 1)
    assert [d.id for d in await store.deliveries_for(claim.job.id)] == [first.id, second.id]
    [untouched] = await store.deliveries_for(other.job.id)
    assert untouched.id == other_delivery.id and untouched.status is DeliveryStatus.PENDING


async def test_recording_an_unknown_delivery_raises_stale_claim(store: Store) -> None:
    with pytest.raises(StaleClaim):
        await store.record_delivery_attempt(
            "msg_nope_1",
            new_token(),
            ok=True,
            status_code=200,
            error=None,
            next_attempt_at=None,
        )


async def test_next_delivery_at_counts_a_leased_delivery_from_when_its_lease_runs_out(
    store: Store,
) -> None:
    claim = await hooked_claim(store)
    await store.finish(claim.job.id, claim.token, 1)
    delivery = await claim_delivery(store, lease=HOUR)
    assert await store.next_delivery_at() == delivery.lease_expires_at


async def test_pruning_a_job_deletes_its_deliveries(store: Store) -> None:
    claim = await hooked_claim(store)
    await store.finish(claim.job.id, claim.token, 1)
    assert await store.prune(time.time() + 1) == 1
    assert await store.deliveries_for(claim.job.id) == []
    assert await store.claim_deliveries(10, LONG_LEASE) == []
