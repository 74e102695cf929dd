"""Retry rules, soft time limits and expiry as a worker applies them, on each executor."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from jobwire import EventType, JobDefinitionError, Jobwire, Retry, State
from jobwire.jobs import build_options
from jobwire.services.expirer import Expirer
from jobwire.worker.call import describe
from tests.support import rules
from tests.support.waiting import event_types
from tests.unit.conftest import AppFactory

EXECUTORS = ["async", "thread", "process"]


def runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_an_error_in_retry_on_is_retried(
    make_app: AppFactory, executor: str, tmp_path: Path
) -> None:
    name, marker = f"picky_{executor}", tmp_path / "runs"
    app = make_app(name)
    async with app.lifespan():
        handle = await app.enqueue(name, {"marker": str(marker), "kind": "timeout_once"})
        assert await handle.result(timeout=30) == "ok after 2 runs"
        types = await event_types(app, handle.id)
    assert handle.job.attempts == 2
    assert types == ["queued", "started", "retrying", "started", "succeeded"]


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("value", "ValueError"),  # in fail_on
        ("key", "KeyError"),  # not in retry_on
        ("both", "TimeoutAndValue"),  # in both: fail_on wins
    ],
)
async def test_an_error_in_fail_on_or_outside_retry_on_fails_the_job_at_once(
    make_app: AppFactory, executor: str, kind: str, error_type: str, tmp_path: Path
) -> None:
    name, marker = f"picky_{executor}", tmp_path / "runs"
    app = make_app(name)
    async with app.lifespan():
        handle = await app.enqueue(name, {"marker": str(marker), "kind": kind})
        job = await handle.wait(timeout=30)
        types = await event_types(app, job.id)
    assert job.state is State.FAILED
    assert job.error is not None and job.error["type"] == error_type
    assert (job.attempts, job.max_attempts, runs(marker)) == (1, 4, 1)
    assert types == ["queued", "started", "failed"]


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_an_uncharged_retry_runs_again_without_spending_retries(
    make_app: AppFactory, executor: str, tmp_path: Path
) -> None:
    name, marker = f"snooze_{executor}", tmp_path / "runs"
    app = make_app(name)
    async with app.lifespan():
        handle = await app.enqueue(name, {"marker": str(marker), "times": 3, "charge": False})
        # retries=0, yet it ran four times: the three it asked for were not charged.
        assert await handle.result(timeout=30) == {"runs": 4, "attempt": 1}
        events = await app.store.events(handle.id)
    assert handle.job.attempts == 1
    retrying = [e for e in events if e.type is EventType.RETRYING]
    assert len(retrying) == 3
    for event in retrying:
        assert event.data["charged"] is False
        assert event.data["error"]["type"] == "Retry"
        assert event.data["next_run_at"] - event.at <= 0.05 + 0.01
        assert "traceback" not in event.data["error"]


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_a_charged_retry_fails_the_job_once_its_retries_are_spent(
    make_app: AppFactory, executor: str, tmp_path: Path
) -> None:
    name, marker = f"snooze_{executor}", tmp_path / "runs"
    app = make_app(name)
    async with app.lifespan():
        handle = await app.enqueue(name, {"marker": str(marker), "times": 3, "charge": True})
        job = await handle.wait(timeout=30)
    assert job.state is State.FAILED and job.error is not None
    assert job.error["type"] == "Retry" and runs(marker) == 1


def test_retry_takes_a_delay_or_a_time_not_both() -> None:
    assert Retry(delay=30).due(100.0) == 130.0
    assert Retry(at=500.0).due(100.0) == 500.0
    with pytest.raises(ValueError, match="either delay or at"):
        Retry(delay=1, at=2.0)
    with pytest.raises(ValueError, match="delay must be >= 0"):
        Retry(delay=-1)


# -- soft time limits -----------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_a_job_at_its_soft_limit_saves_its_work_before_the_hard_timeout(
    make_app: AppFactory, executor: str
) -> None:
    name = f"soft_{executor}"
    app = make_app(name)
    async with app.lifespan():
        handle = await app.enqueue(name, {})
        result = await handle.result(timeout=30)
    assert result == {"saved": True, "soft": True, "cancelled": True}
    job = handle.job
    assert job.started_at is not None and job.finished_at is not None
    # Told at its soft limit (0.3 s), well before the hard one (20 s).
    assert rules.SOFT <= job.finished_at - job.started_at < 10


async def test_check_cancelled_raises_soft_time_limit_in_a_sync_job(make_app: AppFactory) -> None:
    app = make_app("soft_checked")
    async with app.lifespan():
        job = await (await app.enqueue("soft_checked", {})).wait(timeout=30)
    assert job.state is State.FAILED
    assert job.error is not None and job.error["type"] == "SoftTimeLimit"


def test_a_soft_timeout_must_be_shorter_than_the_timeout() -> None:
    app = Jobwire("memory://")
    with pytest.raises(JobDefinitionError, match="soft_timeout"):

        @app.job(soft_timeout=10, timeout=5)
        async def slow() -> None: ...

    with pytest.raises(JobDefinitionError, match="soft_timeout"):

        @app.job(soft_timeout=0)
        async def instant() -> None: ...


def test_retry_on_and_fail_on_must_be_exception_classes() -> None:
    app = Jobwire("memory://")
    with pytest.raises(JobDefinitionError, match="retry_on"):

        @app.job(retry_on=("TimeoutError",))  # type: ignore[arg-type]
        async def named() -> None: ...

    with pytest.raises(JobDefinitionError, match="fail_on"):

        @app.job(fail_on=int)  # type: ignore[arg-type]
        async def number() -> None: ...


# -- expiry ---------------------------------------------------------------------------------


async def test_a_job_claimed_after_its_expiry_is_cancelled_as_expired_and_never_runs(
    make_app: AppFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "runs"
    app = make_app("expiring")
    async with app:  # the store only: no worker, no expirer yet
        deadline = time.time() + 0.2
        handle = await app.enqueue("expiring", {"marker": str(marker)}, expires_at=deadline)
        assert handle.job.options["expires_at"] == deadline
        while time.time() <= deadline:  # the wall clock is what expiry is about
            await _pause(deadline - time.time())
        worker = await app.start_worker()
        try:
            job = await handle.wait(timeout=30)
        finally:
            await worker.drain()
        events = await app.store.events(job.id)
    assert job.state is State.CANCELLED and runs(marker) == 0
    assert [e.type.value for e in events] == ["queued", "started", "cancelled"]
    assert events[-1].data["reason"] == "expired"


async def test_the_expirer_cancels_a_queued_job_past_its_expiry(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app("expiring")
    async with app:
        soon = await app.enqueue("expiring", {"marker": "unused"}, expires_in=0.2)
        later = await app.enqueue("expiring", {"marker": "unused"})  # the job's 1 h default
        assert later.job.options["expires_at"] > time.time() + 3500
        assert await Expirer(app.store).run_once() == 0
        deadline = soon.job.options["expires_at"]
        while time.time() <= deadline:
            await _pause(deadline - time.time())
        assert await Expirer(app.store).run_once() == 1
        job = await soon.get()
        assert job.state is State.CANCELLED
        assert (await later.get()).state is State.QUEUED
        assert await event_types(app, job.id) == ["queued", "cancelled"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"expires_in": 1, "expires_at": time.time() + 5}, "either expires_in or expires_at"),
        ({"expires_in": 0}, "expires_in must be > 0"),
        ({"expires_in": 5, "delay": 10}, "expire before it is due"),
        ({"expires_at": time.time() - 1}, "expire before it is due"),
    ],
)
async def test_an_expiry_the_job_could_never_meet_is_refused_at_submit(
    make_app: AppFactory, options: dict[str, float], message: str
) -> None:
    app = make_app("expiring")
    async with app:
        with pytest.raises(ValueError, match=message):
            await app.enqueue("expiring", {"marker": "unused"}, **options)  # type: ignore[arg-type]


async def _pause(seconds: float) -> None:
    await asyncio.sleep(max(0.01, seconds))


def test_a_retry_the_job_asks_for_is_honoured_whatever_fail_on_and_retry_on_say() -> None:
    def job() -> None: ...

    options = build_options(
        job,
        executor="thread",
        retries=0,
        backoff=None,
        timeout=None,
        queue="default",
        priority=0,
        log_events=False,
        retry_on=KeyError,
        fail_on=Exception,
    )
    asked = describe(Retry(delay=5, charge=False), options)
    assert "permanent" not in asked and asked["retry"]["charge"] is False
    assert describe(KeyError("k"), options)["permanent"] is True  # fail_on wins
    assert describe(ValueError("v"), options)["permanent"] is True
