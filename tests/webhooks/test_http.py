"""Webhooks over HTTP against a real uvicorn server: validation at submit, delivery
status in the job view, and an outbox that survives a server restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from jobwire import ConfigError, Jobwire
from jobwire.webhooks.options import WebhookRefused
from tests.support.server import ServerThread
from tests.support.waiting import until
from tests.webhooks.app import build
from tests.webhooks.conftest import MakeApp
from tests.webhooks.receiver import Receiver, free_port

REFUSED_TARGETS = [
    ("127.0.0.1", "loopback"),
    ("10.0.0.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped"),
    ("0.0.0.0", "unspecified"),
    ("localhost", "loopback"),
]


async def serve(app: Jobwire) -> ServerThread:
    server = ServerThread(build(app))
    await server.start()
    return server


@pytest.fixture
async def strict(make_app: MakeApp) -> AsyncIterator[httpx.AsyncClient]:
    """A server with webhooks on and the default egress rules (no private targets)."""
    server = await serve(make_app(webhook_allow_private=False))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            yield client
    finally:
        await server.stop()


def detail(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert isinstance(error, dict)
    return error


async def test_private_loopback_and_link_local_targets_are_refused_at_submit_by_default(
    strict: httpx.AsyncClient,
) -> None:
    for host, reason in REFUSED_TARGETS:
        webhook = {"url": f"http://{host}:8080/hook"}
        error = detail(
            await strict.post("/jobs", json={"job": "add", "args": {"a": 1}, "webhook": webhook})
        )
        assert error["loc"] == ["body", "webhook", "url"], host
        assert reason in error["msg"], (host, error["msg"])
    assert (await strict.get("/jobs")).json()["items"] == []


@pytest.mark.parametrize(
    ("webhook", "loc", "message"),
    [
        (
            {"url": "http://h.example/x", "events": ["succeeded", "finished"]},
            ["body", "webhook", "events", 1],
            "succeeded",
        ),
        ({"url": "http://h.example/x", "events": []}, ["body", "webhook", "events"], "at least 1"),
        ({"url": "ftp://h.example/x"}, ["body", "webhook", "url"], "expected http or https"),
        ({"url": "http://user:pw@h.example/x"}, ["body", "webhook", "url"], "credentials"),
        ({"url": "http://h.example/x", "secret": "x"}, ["body", "webhook", "secret"], "Extra"),
    ],
)
async def test_an_invalid_webhook_is_refused_with_422_naming_the_field(
    strict: httpx.AsyncClient, webhook: dict[str, Any], loc: list[Any], message: str
) -> None:
    body = {"job": "add", "args": {"a": 1}, "webhook": webhook}
    error = detail(await strict.post("/jobs", json=body))
    assert error["loc"] == loc
    assert message in error["msg"]


async def test_a_webhook_is_refused_with_422_when_no_secret_is_configured(
    make_app: MakeApp, receiver: Receiver
) -> None:
    server = await serve(make_app(webhook_secret=""))
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            body = {"job": "add", "args": {"a": 1}, "webhook": {"url": receiver.url()}}
            error = detail(await client.post("/jobs", json=body))
            plain = await client.post("/jobs", json={"job": "add", "args": {"a": 1}})
    finally:
        await server.stop()
    assert error["loc"] == ["body", "webhook"]
    assert "JOBWIRE_WEBHOOK_SECRET" in error["msg"]
    assert plain.status_code == 202


async def test_enqueue_from_python_refuses_a_webhook_without_a_secret_or_to_a_refused_target(
    make_app: MakeApp, receiver: Receiver
) -> None:
    hook = {"webhook": {"url": receiver.url()}}
    async with make_app(webhook_secret="") as app:
        with pytest.raises(ConfigError, match="JOBWIRE_WEBHOOK_SECRET"):
            await app.enqueue("add", {"a": 1}, options=hook)
    async with make_app(webhook_allow_private=False) as app:
        with pytest.raises(WebhookRefused, match="loopback") as refused:
            await app.enqueue("add", {"a": 1}, options=hook)
        assert refused.value.loc == ("url",)
        with pytest.raises(WebhookRefused, match="unknown event 'done'"):
            await app.enqueue(
                "add",
                {"a": 1},
                options={"webhook": {"url": "https://93.184.216.34/", "events": ["done"]}},
            )


async def test_the_job_view_shows_each_delivery_with_its_status_and_attempts(
    make_app: MakeApp, receiver: Receiver, secret: str
) -> None:
    receiver.answer(503)
    server = await serve(make_app())
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            webhook = {"url": receiver.url(), "events": ["started", "succeeded"]}
            submitted = await client.post(
                "/jobs", json={"job": "add", "args": {"a": 1}, "webhook": webhook}
            )
            assert submitted.status_code == 202, submitted.text
            assert "webhooks" not in submitted.json()
            job_id = submitted.json()["id"]
            await receiver.take(3)  # started (503, then 200) and succeeded, in some order

            async def settled() -> Any:
                view = (await client.get(f"/jobs/{job_id}")).json()
                hooks = view["webhooks"]
                done = len(hooks) == 2 and all(h["status"] == "delivered" for h in hooks)
                return view if done else None

            view = await until(settled, what="both deliveries to be recorded delivered")
            listed = (await client.get("/jobs")).json()["items"]
    finally:
        await server.stop()
    started, succeeded = view["webhooks"]
    assert started == {
        "id": f"msg_{job_id}_2",
        "url": receiver.url(),
        "event": "started",
        "seq": 2,
        "status": "delivered",
        "attempts": 2,
        "last_status_code": 200,
        "last_error": None,
        "last_attempt_at": started["last_attempt_at"],
        "next_attempt_at": None,
    }
    assert started["last_attempt_at"].endswith("Z")
    assert (succeeded["event"], succeeded["attempts"]) == ("succeeded", 1)
    assert [item["id"] for item in listed] == [job_id] and "webhooks" not in listed[0]
    for received in receiver.received:
        Webhook(secret).verify(received.body, received.headers)


async def test_a_delivery_pending_while_the_receiver_is_down_is_sent_after_a_server_restart(
    make_app: MakeApp, secret: str
) -> None:
    receiver = Receiver(free_port())  # down: nothing listens on its port yet
    settings = {"webhook_max_attempts": 1000, "webhook_backoff_cap_seconds": 0.2}
    first = await serve(make_app(**settings))
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
            body = {"job": "add", "args": {"a": 2}, "webhook": {"url": receiver.url()}}
            job_id = (await client.post("/jobs", json=body)).json()["id"]
            assert (await client.get(f"/jobs/{job_id}?wait=10")).json()["state"] == "succeeded"

            async def refused() -> Any:
                [hook] = (await client.get(f"/jobs/{job_id}")).json()["webhooks"]
                return hook if hook["attempts"] >= 1 else None

            hook = await until(refused, what="a refused attempt")
    finally:
        await first.stop()
    assert hook["status"] == "pending" and hook["last_error"].startswith("cannot connect")

    async with receiver:
        second = await serve(make_app(**settings))
        try:
            received = await receiver.next(within=20)
            async with httpx.AsyncClient(base_url=second.url, timeout=30) as client:

                async def delivered() -> Any:
                    [hook] = (await client.get(f"/jobs/{job_id}")).json()["webhooks"]
                    return hook if hook["status"] == "delivered" else None

                hook = await until(delivered, what="the delivery to be recorded")
        finally:
            await second.stop()
    payload = Webhook(secret).verify(received.body, received.headers)
    assert received.headers["webhook-id"] == hook["id"] == f"msg_{job_id}_3"
    assert (payload["type"], payload["data"]["result"]) == ("job.succeeded", 3)
    assert len(receiver.received) == 1
