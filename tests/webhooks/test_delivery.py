"""Deliveries from a running app to a real receiver: signed, retried, disabled, never
redirected. The app runs in-process (worker and outbox on the test's loop); the
receiver is a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from jobwire import Jobwire, Settings
from jobwire.ids import new_job_id
from jobwire.store.base import DeliveryStatus, NewJob
from jobwire.store.sqlite import SQLiteStore
from jobwire.webhooks.outbox import Outbox
from tests.webhooks.app import FAST, GATES, new_secret
from tests.webhooks.conftest import MakeApp
from tests.webhooks.receiver import Answer, Received, Receiver, free_port


def outbox_of(app: Jobwire) -> Outbox:
    assert app.outbox is not None, "the outbox service is not running"
    return app.outbox


def verified(received: Received, secret: str) -> Any:
    """The body, once the standardwebhooks package has verified its signature."""
    return Webhook(secret).verify(received.body, received.headers)


async def submit(app: Jobwire, job: str, args: dict[str, Any], **webhook: Any) -> str:
    handle = await app.enqueue(job, args, options={"webhook": webhook})
    return handle.id


def ended(status: DeliveryStatus) -> Any:
    return lambda d: d.status is status


async def test_every_delivery_is_signed_and_verifies_with_the_standardwebhooks_package(
    running: Jobwire, receiver: Receiver, secret: str
) -> None:
    events = ["queued", "started", "progress", "succeeded"]
    job_id = await submit(running, "steps", {"n": 2}, url=receiver.url(), events=events)
    arrivals = await receiver.take(5)
    bodies = {}
    for received in arrivals:
        body = verified(received, secret)
        seq = body["data"]["seq"]
        assert received.headers["webhook-id"] == f"msg_{job_id}_{seq}"
        assert received.headers["content-type"] == "application/json"
        assert received.method == "POST" and received.path == "/hook"
        bodies[seq] = body
    assert {s: b["type"] for s, b in bodies.items()} == {
        1: "job.queued",
        2: "job.started",
        3: "job.progress",
        4: "job.progress",
        5: "job.succeeded",
    }
    done = bodies[5]["data"]
    assert (done["id"], done["job"], done["state"], done["result"]) == (
        job_id,
        "steps",
        "succeeded",
        2,
    )
    assert (done["attempts"], done["error"]) == (1, None)
    assert bodies[4]["data"]["progress"] == {"current": 2, "total": 2, "message": None}
    assert bodies[5]["timestamp"].endswith("Z")
    with pytest.raises(WebhookVerificationError):
        verified(arrivals[0], new_secret())
    tampered = Received(**{**arrivals[0].__dict__, "body": arrivals[0].body + b" "})
    with pytest.raises(WebhookVerificationError):
        verified(tampered, secret)


@pytest.mark.parametrize(
    ("job", "args", "event"),
    [("steps", {"n": 3}, "job.succeeded"), ("fails", {"message": "no"}, "job.failed")],
)
async def test_only_the_terminal_event_is_sent_when_no_events_are_listed(
    running: Jobwire,
    receiver: Receiver,
    secret: str,
    job: str,
    args: dict[str, Any],
    event: str,
) -> None:
    job_id = await submit(running, job, args, url=receiver.url())
    body = verified(await receiver.next(), secret)
    assert (body["type"], body["data"]["id"]) == (event, job_id)
    await outbox_of(running).recorded(ended(DeliveryStatus.DELIVERED))
    [delivery] = await running.store.deliveries_for(job_id)
    assert delivery.event == event.removeprefix("job.")
    assert len(receiver.received) == 1
    if event == "job.failed":
        assert body["data"]["error"]["message"] == "no"


async def test_a_receiver_failing_three_times_gets_the_same_message_on_the_fourth_attempt(
    running: Jobwire, receiver: Receiver, secret: str
) -> None:
    receiver.answer(500, 500, Answer(500, body=b"try later"))
    job_id = await submit(running, "add", {"a": 1}, url=receiver.url())
    arrivals = await receiver.take(4)
    ids = {received.headers["webhook-id"] for received in arrivals}
    assert len(ids) == 1
    assert all(verified(received, secret)["data"]["id"] == job_id for received in arrivals)
    delivered = await outbox_of(running).recorded(ended(DeliveryStatus.DELIVERED))
    assert (delivered.id, delivered.attempts, delivered.last_status_code) == (ids.pop(), 4, 200)
    assert len(receiver.received) == 4


async def test_a_failed_attempt_keeps_its_status_code_and_the_start_of_the_answer(
    running: Jobwire, receiver: Receiver
) -> None:
    receiver.answer(Answer(500, body=b"database down" + b"x" * 1000))
    await submit(running, "add", {"a": 1}, url=receiver.url())
    failed = await outbox_of(running).recorded(lambda d: d.attempts == 1)
    assert failed.status is DeliveryStatus.PENDING and failed.last_status_code == 500
    assert failed.last_error is not None and failed.last_error.startswith("HTTP 500: database down")
    assert len(failed.last_error) < 300


async def test_retry_after_on_a_429_is_honoured_instead_of_the_backoff(
    make_app: MakeApp, receiver: Receiver
) -> None:
    app = make_app(webhook_backoff_cap_seconds=5.0)  # the first retry's backoff: ≤ 0.01 s
    receiver.answer(Answer(429, {"Retry-After": "1"}))
    async with app.lifespan():
        await submit(app, "add", {"a": 1}, url=receiver.url())
        first, second = await receiver.take(2)
        throttled = await outbox_of(app).recorded(lambda d: d.attempts == 1)
        await outbox_of(app).recorded(ended(DeliveryStatus.DELIVERED))
    assert second.at - first.at >= 0.95
    assert throttled.next_attempt_at is not None and throttled.last_attempt_at is not None
    assert throttled.next_attempt_at - throttled.last_attempt_at == pytest.approx(1.0, abs=0.25)


async def test_retry_after_is_capped_by_the_backoff_cap(
    make_app: MakeApp, receiver: Receiver
) -> None:
    app = make_app(webhook_backoff_cap_seconds=0.3)
    async with app.lifespan():
        receiver.answer(Answer(503, {"Retry-After": "3600"}))
        await submit(app, "add", {"a": 1}, url=receiver.url())
        first, second = await receiver.take(2)
        assert second.at - first.at < 5


async def test_a_410_disables_the_url_for_the_job_and_nothing_more_is_sent_to_it(
    running: Jobwire, receiver: Receiver
) -> None:
    GATES["410"] = gate = asyncio.Event()
    receiver.answer(410)
    job_id = await submit(
        running, "gated", {"gate": "410"}, url=receiver.url(), events=["progress", "succeeded"]
    )
    disabled = await outbox_of(running).recorded(ended(DeliveryStatus.DISABLED))
    assert (disabled.event, disabled.attempts, disabled.last_status_code) == ("progress", 1, 410)
    gate.set()
    assert await running.handle(job_id).result(timeout=10) == "410"
    assert await running.store.deliveries_for(job_id) == [disabled]
    assert await running.store.next_delivery_at() is None
    assert len(receiver.received) == 1


async def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(
    make_app: MakeApp, receiver: Receiver
) -> None:
    app = make_app(webhook_max_attempts=2)
    elsewhere = receiver.url("/elsewhere")
    receiver.answer(Answer(302, {"Location": elsewhere}), Answer(307, {"Location": elsewhere}))
    async with app.lifespan():
        await submit(app, "add", {"a": 1}, url=receiver.url())
        failed = await outbox_of(app).recorded(ended(DeliveryStatus.FAILED))
    assert (failed.attempts, failed.last_status_code) == (2, 307)
    assert failed.last_error == f"HTTP 307: redirect to {elsewhere!r} not followed"
    assert [r.path for r in receiver.received] == ["/hook", "/hook"]


async def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    make_app: MakeApp, receiver: Receiver
) -> None:
    app = make_app(webhook_timeout_seconds=0.3, webhook_max_attempts=1)
    never = asyncio.Event()
    receiver.answer(Answer(200, hold=never))
    async with app.lifespan():
        await submit(app, "add", {"a": 1}, url=receiver.url())
        await receiver.next()
        failed = await outbox_of(app).recorded(ended(DeliveryStatus.FAILED))
    assert failed.last_error == "timed out after 0.3 s"
    assert failed.last_status_code is None


async def test_a_refused_connection_is_retried_until_the_attempts_run_out(
    make_app: MakeApp,
) -> None:
    app = make_app(webhook_max_attempts=3)
    async with app.lifespan():
        job_id = await submit(app, "add", {"a": 1}, url=f"http://127.0.0.1:{free_port()}/hook")
        failed = await outbox_of(app).recorded(ended(DeliveryStatus.FAILED))
        assert await app.store.deliveries_for(job_id) == [failed]
    assert failed.attempts == 3 and failed.last_status_code is None
    assert failed.last_error is not None
    assert failed.last_error.startswith("cannot connect to 127.0.0.1")


async def test_the_body_is_the_same_on_every_attempt_and_only_the_timestamp_header_moves(
    running: Jobwire, receiver: Receiver
) -> None:
    receiver.answer(500)
    await submit(running, "add", {"a": 1}, url=receiver.url())
    first, second = await receiver.take(2)
    assert first.body == second.body
    assert json.loads(first.body)["type"] == "job.succeeded"
    assert int(second.headers["webhook-timestamp"]) >= int(first.headers["webhook-timestamp"])


async def test_two_senders_on_one_database_send_each_delivery_once(
    sqlite_url: str, receiver: Receiver, secret: str
) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    first, second = SQLiteStore(path), SQLiteStore(path)  # as a server and a worker would
    await first.open()
    await second.open()
    settings = Settings(**{**FAST, "webhook_secret": secret})
    try:
        hook = {"webhook": {"url": receiver.url(), "events": None}}
        jobs = [NewJob(id=new_job_id(), job="add", args={}, options=hook) for _ in range(12)]
        await first.enqueue(jobs)
        for claim in await first.claim("w", ["default"], ["add"], 12, 60.0):
            await first.finish(claim.job.id, claim.token, 1)
        async with Outbox(first, settings) as one, Outbox(second, settings) as other:
            one.batch = other.batch = 4
            sent = await asyncio.gather(*(o.run_once() for o in (one, other, one, other)))
    finally:
        await first.close()
        await second.close()
    assert sum(sent) == 12
    ids = [received.headers["webhook-id"] for received in receiver.received]
    assert sorted(ids) == sorted(f"msg_{job.id}_3" for job in jobs)
