"""The store's part in retry rules and expiry, on every engine: an uncharged retry, a
job cancelled as expired by its worker or by the expirer."""

from __future__ import annotations

import time

import pytest

from jobwire import model
from jobwire.errors import AlreadyTerminal, InvalidTransition, JobNotFound
from jobwire.ids import new_job_id
from jobwire.model import EventType, State
from jobwire.services.expirer import Expirer
from jobwire.store.base import Store
from tests.contract.test_store_contract import claim_all, claim_one, enqueue_one, types_of

RETRY = {"type": "Retry", "message": "the job asked to run again in 0 s"}


async def test_an_uncharged_retry_requeues_the_job_without_counting_the_attempt(
    store: Store,
) -> None:
    claim = await claim_one(store, max_attempts=1)  # no retries left: charged, it would fail
    retry_at = time.time() - 1
    job = await store.fail(claim.job.id, claim.token, RETRY, retry_at, charge=False)
    assert await store.get(job.id) == job
    assert (job.state, job.attempts, job.scheduled_at, job.error) == (
        State.QUEUED,
        0,
        retry_at,
        RETRY,
    )
    assert (job.claim_token, job.worker_id, job.finished_at) == (None, None, None)
    last = (await store.events(job.id))[-1]
    assert last.type is EventType.RETRYING
    assert last.data == {"attempt": 1, "error": RETRY, "next_run_at": retry_at, "charged": False}
    again = await claim_one(store, job)
    assert again.job.attempts == 1  # the same attempt number as the run that asked


async def test_uncharged_retries_are_not_bounded_by_max_attempts(store: Store) -> None:
    job = await enqueue_one(store, max_attempts=2)
    for _ in range(5):
        claim = await claim_one(store, job)
        job = await store.fail(claim.job.id, claim.token, RETRY, time.time() - 1, charge=False)
        assert job.state is State.QUEUED and job.attempts == 0
    claim = await claim_one(store, job)
    job = await store.fail(claim.job.id, claim.token, {"type": "E"}, time.time() - 1)
    assert job.state is State.QUEUED and job.attempts == 1  # a charged retry counts


async def test_an_uncharged_retry_after_a_cancel_request_ends_the_job_cancelled(
    store: Store,
) -> None:
    claim = await claim_one(store)
    await store.cancel(claim.job.id)
    job = await store.fail(claim.job.id, claim.token, RETRY, time.time() - 1, charge=False)
    assert job.state is State.CANCELLED
    assert await claim_all(store) == []


async def test_an_uncharged_failure_without_retry_at_fails_the_job(store: Store) -> None:
    claim = await claim_one(store, max_attempts=3)
    job = await store.fail(claim.job.id, claim.token, {"type": "E"}, None, charge=False)
    assert job.state is State.FAILED and job.attempts == 1


async def test_the_worker_cancels_a_claimed_job_with_the_reason_it_gives(store: Store) -> None:
    claim = await claim_one(store)
    job = await store.mark_cancelled(claim.job.id, claim.token, model.EXPIRED)
    assert job.state is State.CANCELLED and job.finished_at is not None
    last = (await store.events(job.id))[-1]
    assert last.type is EventType.CANCELLED and last.data == {"reason": "expired", "attempt": 1}


async def test_a_queued_job_past_its_expiry_is_cancelled_as_expired(store: Store) -> None:
    deadline = time.time() - 1
    queued = await enqueue_one(store, options={model.EXPIRES_AT_OPTION: deadline})
    assert model.expires_at(queued) == deadline
    job = await store.cancel_expired(queued.id)
    assert await store.get(job.id) == job
    assert job.state is State.CANCELLED and job.finished_at is not None
    assert await types_of(store, job.id) == [EventType.QUEUED, EventType.CANCELLED]
    assert (await store.events(job.id))[-1].data == {"reason": "expired"}
    assert await claim_all(store) == []  # gone from the queue


async def test_only_a_queued_expired_job_is_cancelled_as_expired(store: Store) -> None:
    later = await enqueue_one(store, options={model.EXPIRES_AT_OPTION: time.time() + 3600})
    never = await enqueue_one(store, queue="io")
    for job in (later, never):
        with pytest.raises(InvalidTransition):
            await store.cancel_expired(job.id)
        assert (await store.get(job.id)).state is State.QUEUED  # type: ignore[union-attr]
    running = await claim_one(store, queue="cpu", options={model.EXPIRES_AT_OPTION: 1.0})
    with pytest.raises(InvalidTransition):
        await store.cancel_expired(running.job.id)
    await store.cancel(later.id)
    with pytest.raises(AlreadyTerminal):
        await store.cancel_expired(later.id)
    with pytest.raises(JobNotFound):
        await store.cancel_expired(new_job_id())


async def test_the_expirer_cancels_every_expired_queued_job_and_nothing_else(
    store: Store,
) -> None:
    past = {model.EXPIRES_AT_OPTION: time.time() - 1}
    expired = [(await enqueue_one(store, options=past)).id for _ in range(3)]
    kept = (await enqueue_one(store, options={model.EXPIRES_AT_OPTION: time.time() + 3600})).id
    plain = (await enqueue_one(store)).id
    assert await Expirer(store).run_once() == 3
    for job_id in expired:
        assert (await store.get(job_id)).state is State.CANCELLED  # type: ignore[union-attr]
    for job_id in (kept, plain):
        assert (await store.get(job_id)).state is State.QUEUED  # type: ignore[union-attr]
    assert await Expirer(store).run_once() == 0


async def test_a_claimed_job_carries_its_expiry_for_the_worker_to_check(store: Store) -> None:
    # The worker decides from the claimed job alone whether it may still run it.
    deadline = time.time() - 1
    claim = await claim_one(store, options={model.EXPIRES_AT_OPTION: deadline})
    assert model.expires_at(claim.job) == deadline
    assert model.expired(claim.job, time.time())
