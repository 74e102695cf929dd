"""Submitting over HTTP to a real server: the 202, validation, size limits, idempotency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import MAX_BODY_BYTES

JOB_VIEW_FIELDS = {
    "id",
    "job",
    "state",
    "args",
    "progress",
    "result",
    "error",
    "attempts",
    "max_attempts",
    "crashes",
    "max_crashes",
    "priority",
    "queue",
    "created_at",
    "scheduled_at",
    "started_at",
    "finished_at",
    "links",
    "cancel_requested",
}


def first_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    error: dict[str, Any] = detail[0]
    return error


async def test_a_submit_answers_202_with_a_location_and_the_job_view(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/jobs", json={"job": "add", "args": {"a": 2, "b": 3}})
    assert response.status_code == 202, response.text
    view = response.json()
    assert set(view) == JOB_VIEW_FIELDS
    job_id = view["id"]
    assert uuid.UUID(job_id).version == 7
    assert response.headers["location"] == view["links"]["self"] == f"/jobs/{job_id}"
    assert view["links"] == {
        "self": f"/jobs/{job_id}",
        "events": f"/jobs/{job_id}/events",
        "ws": f"/jobs/{job_id}/ws",
        "cancel": f"/jobs/{job_id}/cancel",
    }
    assert (view["job"], view["state"], view["args"]) == ("add", "queued", {"a": 2, "b": 3})
    assert (view["attempts"], view["max_attempts"]) == (0, 1)
    assert (view["crashes"], view["max_crashes"]) == (0, 3)
    assert (view["priority"], view["queue"]) == (0, "default")
    assert (view["progress"], view["result"], view["error"]) == (None, None, None)
    assert view["created_at"].endswith("Z")
    assert (view["started_at"], view["finished_at"]) == (None, None)


async def test_defaults_of_the_signature_are_stored_with_the_arguments(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/jobs", json={"job": "add", "args": {"a": 2}})
    assert response.status_code == 202
    assert response.json()["args"] == {"a": 2, "b": 1}


async def test_arguments_of_the_wrong_type_are_refused_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    error = first_error(await client.post("/jobs", json={"job": "square", "args": {"n": "x"}}))
    assert error["loc"] == ["body", "args", "n"]
    assert error["type"] == "int_parsing"


async def test_a_missing_required_argument_is_refused_naming_it(client: httpx.AsyncClient) -> None:
    error = first_error(await client.post("/jobs", json={"job": "square", "args": {}}))
    assert error["loc"] == ["body", "args", "n"]
    assert error["type"] == "missing"


async def test_an_argument_the_job_does_not_take_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs", json={"job": "square", "args": {"n": 1, "m": 2}})
    error = first_error(response)
    assert error["loc"] == ["body", "args", "m"]
    assert error["type"] == "extra_forbidden"


async def test_an_unknown_job_is_refused_naming_the_job_field(client: httpx.AsyncClient) -> None:
    error = first_error(await client.post("/jobs", json={"job": "mine_bitcoin", "args": {}}))
    assert error["loc"] == ["body", "job"]
    assert "mine_bitcoin" in error["msg"]
    assert "add" in error["msg"], "the message lists the registered jobs"


async def test_a_body_that_is_not_json_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert first_error(response)["loc"] == ["body"]


async def test_a_body_over_the_size_limit_is_refused_with_413(client: httpx.AsyncClient) -> None:
    padding = "x" * MAX_BODY_BYTES
    response = await client.post("/jobs", json={"job": "stamp", "args": {"label": padding}})
    assert response.status_code == 413, response.text
    assert str(MAX_BODY_BYTES) in response.json()["detail"]
    listed = await client.get("/jobs")
    assert listed.json()["items"] == []


async def test_a_streamed_body_over_the_size_limit_is_refused_without_a_declared_length(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"job": "stamp", "args": {"label": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"y" * 1024
        yield b'"}}'

    response = await client.post(
        "/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text


async def test_a_body_exactly_at_the_size_limit_is_accepted(client: httpx.AsyncClient) -> None:
    envelope = len(b'{"job":"stamp","args":{"label":""}}')
    body = '{"job":"stamp","args":{"label":"' + "z" * (MAX_BODY_BYTES - envelope) + '"}}'
    assert len(body) == MAX_BODY_BYTES
    response = await client.post(
        "/jobs", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text


async def test_the_same_idempotency_key_and_payload_return_the_same_job(
    client: httpx.AsyncClient,
) -> None:
    payload = {"job": "stamp", "args": {"label": "once"}, "delay": 3600}
    first = await client.post("/jobs", json=payload, headers={"Idempotency-Key": "order-17"})
    again = await client.post("/jobs", json=payload, headers={"Idempotency-Key": "order-17"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    listed = (await client.get("/jobs")).json()["items"]
    assert [item["id"] for item in listed] == [first.json()["id"]]


async def test_an_idempotency_key_reused_with_another_payload_is_refused(
    client: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": "order-18"}
    first = await client.post("/jobs", json={"job": "add", "args": {"a": 1}}, headers=key)
    assert first.status_code == 202
    other = await client.post("/jobs", json={"job": "add", "args": {"a": 2}}, headers=key)
    error = first_error(other)
    assert error["loc"] == ["header", "Idempotency-Key"]
    assert "order-18" in error["msg"]


async def test_fifty_concurrent_submits_with_one_key_make_exactly_one_job(
    client: httpx.AsyncClient,
) -> None:
    payload = {"job": "stamp", "args": {"label": "the one"}, "delay": 3600}
    headers = {"Idempotency-Key": "burst-1"}
    responses = await asyncio.gather(
        *(client.post("/jobs", json=payload, headers=headers) for _ in range(50))
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {202, 409}, codes
    ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(ids) == 1, ids
    listed = (await client.get("/jobs")).json()["items"]
    assert [item["id"] for item in listed] == list(ids)


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"priority": 5000}, ["body", "priority"]),
        ({"delay": -1}, ["body", "delay"]),
        ({"queue": "no spaces"}, ["body", "queue"]),
        ({"run_at": "2030-01-01T00:00:00"}, ["body", "run_at"]),
        ({"colour": "red"}, ["body", "colour"]),
    ],
)
async def test_invalid_submit_options_are_refused_naming_the_option(
    client: httpx.AsyncClient, extra: dict[str, Any], loc: list[str]
) -> None:
    response = await client.post("/jobs", json={"job": "add", "args": {"a": 1}, **extra})
    assert first_error(response)["loc"] == loc
