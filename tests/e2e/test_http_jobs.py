"""Following and controlling jobs over HTTP: get and long-poll, list, cancel, not found."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import httpx
import pytest

from jobwire import Jobwire
from jobwire.ids import new_job_id
from tests.e2e.conftest import MAX_WAIT_SECONDS


async def submit(client: httpx.AsyncClient, job: str, args: dict[str, Any], **extra: Any) -> str:
    response = await client.post("/jobs", json={"job": job, "args": args, **extra})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def until_event(client: httpx.AsyncClient, job_id: str, wanted: str) -> None:
    """Follow the job's Server-Sent Events until one of type ``wanted``."""
    async with asyncio.timeout(10), client.stream("GET", f"/jobs/{job_id}/events") as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line == f"event: {wanted}":
                return
    raise AssertionError(f"the stream of job {job_id} ended without a {wanted} event")


async def test_a_long_poll_returns_the_finished_job_in_one_request(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, "add", {"a": 20, "b": 22}, delay=0.3)
    began = time.monotonic()
    response = await client.get(f"/jobs/{job_id}", params={"wait": 5})
    took = time.monotonic() - began
    assert response.status_code == 200
    view = response.json()
    assert (view["state"], view["result"], view["attempts"]) == ("succeeded", 42, 1)
    assert view["started_at"] is not None and view["finished_at"] is not None
    assert 0.2 < took < 5, "it neither answered before the job ran nor waited out the timeout"


async def test_a_process_job_runs_end_to_end(client: httpx.AsyncClient) -> None:
    job_id = await submit(client, "square", {"n": 12})
    view = (await client.get(f"/jobs/{job_id}", params={"wait": 10})).json()
    assert (view["state"], view["result"]) == ("succeeded", 144)


async def test_a_long_poll_of_a_job_still_running_returns_it_running_when_the_wait_ends(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, "stamp", {"label": "later"}, delay=3600)
    began = time.monotonic()
    response = await client.get(f"/jobs/{job_id}", params={"wait": 0.3})
    assert response.status_code == 200
    assert response.json()["state"] == "queued"
    assert time.monotonic() - began >= 0.3


async def test_a_wait_over_the_configured_maximum_is_refused_naming_wait(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, "add", {"a": 1})
    response = await client.get(f"/jobs/{job_id}", params={"wait": MAX_WAIT_SECONDS + 1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "wait"]


async def test_an_unknown_job_id_is_not_found(client: httpx.AsyncClient) -> None:
    missing = new_job_id()
    assert (await client.get(f"/jobs/{missing}")).status_code == 404
    assert (await client.get(f"/jobs/{missing}", params={"wait": 1})).status_code == 404
    assert (await client.post(f"/jobs/{missing}/cancel")).status_code == 404


@pytest.mark.parametrize("bad", ["not-a-uuid", "12345", "0192aaaa-0000-7000-8000-00000000000g"])
async def test_an_id_that_is_not_a_uuid_is_not_found(client: httpx.AsyncClient, bad: str) -> None:
    assert (await client.get(f"/jobs/{bad}")).status_code == 404
    assert (await client.post(f"/jobs/{bad}/cancel")).status_code == 404


async def test_cancel_answers_202_and_a_second_cancel_answers_409(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, "stamp", {"label": "never"}, delay=3600)
    first = await client.post(f"/jobs/{job_id}/cancel")
    assert first.status_code == 202
    assert first.json()["state"] == "cancelled"
    again = await client.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["detail"] == f"job {job_id} is cancelled; cannot cancel it"


async def test_cancel_of_a_running_job_flags_it_and_the_job_ends_cancelled(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, "waits_for_cancel", {})
    await until_event(client, job_id, "started")
    flagged = await client.post(f"/jobs/{job_id}/cancel")
    assert flagged.status_code == 202
    assert (flagged.json()["state"], flagged.json()["cancel_requested"]) == ("running", True)
    ended = (await client.get(f"/jobs/{job_id}", params={"wait": 5})).json()
    assert ended["state"] == "cancelled"
    assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 409


async def test_the_list_is_filtered_by_state_and_job_newest_first(
    client: httpx.AsyncClient,
) -> None:
    added = [await submit(client, "add", {"a": i}) for i in range(4)]
    waiting = [await submit(client, "stamp", {"label": str(i)}, delay=3600) for i in range(3)]
    for job_id in added:
        assert (await client.get(f"/jobs/{job_id}", params={"wait": 5})).json()[
            "state"
        ] == "succeeded"

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/jobs", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids() == sorted(added + waiting, reverse=True)
    assert await ids(state="queued") == sorted(waiting, reverse=True)
    assert await ids(state="succeeded") == sorted(added, reverse=True)
    assert await ids(job="add") == sorted(added, reverse=True)
    assert await ids(job="add", state="queued") == []
    assert await ids(state="queued,succeeded") == sorted(added + waiting, reverse=True)
    bad = await client.get("/jobs", params={"state": "sleeping"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "state"]


async def test_cursor_pagination_visits_every_job_exactly_once(client: httpx.AsyncClient) -> None:
    submitted = [await submit(client, "stamp", {"label": str(i)}, delay=3600) for i in range(11)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/jobs", params=params)).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "the cursor never ran out"
    assert pages == 4
    assert seen == sorted(submitted, reverse=True)
    assert len(set(seen)) == len(seen)


async def test_a_forged_cursor_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs", params={"cursor": "bm90IGFuIGlk"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_the_openapi_document_shows_each_jobs_arguments_in_the_submit_body(
    client: httpx.AsyncClient, served: Jobwire
) -> None:
    document = (await client.get("/openapi.json")).json()
    body = document["paths"]["/jobs"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["discriminator"] == {"propertyName": "job"}
    variants = {variant["properties"]["job"]["enum"][0]: variant for variant in schema["oneOf"]}
    assert set(variants) == set(served.registry)
    for name, spec in served.registry.items():
        args = variants[name]["properties"]["args"]
        assert set(args.get("properties", {})) == {p.name for p in spec.parameters}, name
    add = variants["add"]["properties"]["args"]
    assert add["properties"]["a"]["type"] == "integer"
    assert add["properties"]["b"]["default"] == 1
    assert add["required"] == ["a"]
    assert variants["add"]["description"] == "Adds two numbers."
    assert variants["square"]["properties"]["args"]["required"] == ["n"]


async def test_liveness_and_readiness_answer_ok(client: httpx.AsyncClient) -> None:
    live = await client.get("/jobs/health/live")
    ready = await client.get("/jobs/health/ready")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


async def test_readiness_answers_503_with_the_reason_when_the_schema_is_not_current(
    client: httpx.AsyncClient, served: Jobwire
) -> None:
    path = served.settings.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE jobwire_meta SET value = '0' WHERE key = 'schema_version'")
    conn.close()
    response = await client.get("/jobs/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "schema version is 0" in response.json()["detail"]
    assert (await client.get("/jobs/health/live")).status_code == 200
