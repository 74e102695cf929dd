"""Owners: nobody reads, follows or cancels another owner's job, on any route.

The server runs with ``JOBWIRE_API_KEYS="ka=alice,kb=bob"``. Every route of the app's
OpenAPI document and every WebSocket route is walked with bob's key against alice's job,
and must answer exactly as it does for an id that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from starlette.routing import WebSocketRoute

from jobwire.ids import new_job_id
from tests.channels.conftest import PREFIX, Server, WsOutcome, read_sse, submit, ws_follow

ALICE = {"Authorization": "Bearer ka"}
BOB = {"Authorization": "Bearer kb"}
PATH_PARAM = re.compile(r"\{[^}]+\}")
# Routes that stream without end: checked by the stream tests below, not by the walk.
ENDLESS_STREAMS = {f"{PREFIX}/events"}
SUBMIT_BODY = {"job": "emit", "args": {"n": 1}}
# Routes whose body is not a submit: a filter that would match alice's job.
BODIES = {
    f"{PREFIX}/bulk/cancel": {"job": "gated"},
    f"{PREFIX}/bulk/purge": {"job": "gated"},
    f"{PREFIX}/workflows": {"steps": [{"job": "emit", "args": {"n": 1}}]},
}


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("owners"), {"JOBWIRE_API_KEYS": "ka=alice,kb=bob"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(keyed_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=30) as http:
        yield http


@pytest.fixture
async def alices_job(client: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[str]:
    """A job of alice's that is running (blocked on its gate) while the test runs."""
    job_id = await submit(
        client, "gated", {"before": 1, "after": 0, "gate": str(tmp_path / "gate")}, headers=ALICE
    )
    await read_sse(
        client, f"{PREFIX}/{job_id}/events", headers=ALICE, stop=lambda sse: sse.event == "output"
    )
    yield job_id
    (tmp_path / "gate").touch()


def websocket_routes() -> list[str]:
    """The served app's WebSocket paths (OpenAPI does not list them)."""
    from tests.channels.app import app  # imported only to list its routes

    def walk(routes: list[Any], prefix: str) -> Iterator[str]:
        for route in routes:
            included = getattr(route, "original_router", None)  # an included router
            if included is not None:
                yield from walk(included.routes, prefix + route.include_context.prefix)
            elif isinstance(route, WebSocketRoute):
                yield prefix + route.path

    paths = list(walk(app.routes, ""))
    assert paths, "found no WebSocket route: has FastAPI changed how it keeps included routers?"
    return paths


async def answer(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], body: Any
) -> tuple[int, str, Any]:
    """Status, content type and JSON body (or text) of one request, without waiting for
    the end of a stream that a wrong answer might open."""
    request = client.build_request(method, path, headers=headers, json=body)
    async with asyncio.timeout(10):
        response = await client.send(request, stream=True)
        try:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                return response.status_code, "text/event-stream", None
            text = (await response.aread()).decode()
        finally:
            await response.aclose()
    try:
        content: Any = json.loads(text)
    except ValueError:
        content = text
    return response.status_code, response.headers.get("content-type", ""), content


def operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def header_variants(path: str) -> list[dict[str, str]]:
    if path.endswith("/events"):
        return [{"Accept": "text/event-stream"}, {"Accept": "application/json"}]
    return [{}]


async def test_every_route_answers_bob_about_alices_job_exactly_as_about_an_unknown_id(
    client: httpx.AsyncClient, keyed_server: Server, alices_job: str
) -> None:
    openapi = (await client.get("/openapi.json")).json()
    unknown = new_job_id()
    walked: list[str] = []

    for method, path, operation in operations(openapi):
        if not PATH_PARAM.search(path):
            continue
        body = SUBMIT_BODY if "requestBody" in operation else None
        for extra in header_variants(path):
            headers = {**BOB, **extra}
            status, kind, content = await answer(
                client, method, PATH_PARAM.sub(alices_job, path), headers, body
            )
            u_status, u_kind, u_content = await answer(
                client, method, PATH_PARAM.sub(unknown, path), headers, body
            )
            where = f"{method} {path} {extra}"
            assert status == 404, f"{where}: {status} {content}"
            assert (status, kind) == (u_status, u_kind), where
            assert json.dumps(content).replace(alices_job, "<id>") == json.dumps(u_content).replace(
                unknown, "<id>"
            ), where
            walked.append(where)

    ws_paths = websocket_routes()
    for path in ws_paths:
        if not PATH_PARAM.search(path):
            continue
        for credentials in ({"additional_headers": BOB}, {"query": "?access_token=kb"}):
            query = credentials.pop("query", "")
            url = f"{keyed_server.ws_url}{PATH_PARAM.sub(alices_job, path)}{query}"
            unknown_url = f"{keyed_server.ws_url}{PATH_PARAM.sub(unknown, path)}{query}"
            outcome = await ws_follow(url, within=10, **credentials)
            assert outcome.messages == [], path
            assert outcome == await ws_follow(unknown_url, within=10, **credentials), path
            walked.append(f"WS {path}")

    # Alice still sees her own job everywhere: the 404s above are about bob, not the job.
    assert (await client.get(f"{PREFIX}/{alices_job}", headers=ALICE)).status_code == 200
    assert any("cancel" in w for w in walked) and any("WS" in w for w in walked), walked
    # The job's events in both forms; the workflow's events (a route with an id) too.
    assert len([w for w in walked if "{job_id}/events" in w]) == 2
    assert len([w for w in walked if "/workflows/{workflow_id}/events" in w]) == 2


async def test_routes_without_a_job_id_never_show_bob_alices_job(
    client: httpx.AsyncClient, alices_job: str
) -> None:
    openapi = (await client.get("/openapi.json")).json()
    checked = []
    for method, path, operation in operations(openapi):
        if PATH_PARAM.search(path) or path in ENDLESS_STREAMS:
            continue
        body = BODIES.get(path, SUBMIT_BODY) if "requestBody" in operation else None
        status, _, content = await answer(client, method, path, BOB, body)
        assert status < 400, f"{method} {path}: {status} {content}"
        assert alices_job not in json.dumps(content), f"{method} {path} shows alice's job"
        checked.append(f"{method} {path}")
    assert f"GET {PREFIX}" in checked and f"POST {PREFIX}" in checked
    # Bob's bulk cancel of jobs named like alice's counted none and left hers running.
    assert f"POST {PREFIX}/bulk/cancel" in checked
    mine = (await client.get(f"{PREFIX}/{alices_job}", headers=ALICE)).json()
    assert (mine["state"], mine["cancel_requested"]) == ("running", False)

    for query in ({"state": "running"}, {"job": "gated"}, {"limit": 200}):
        page = (await client.get(PREFIX, params=query, headers=BOB)).json()
        assert alices_job not in {item["id"] for item in page["items"]}, query
    alices = (await client.get(PREFIX, params={"job": "gated"}, headers=ALICE)).json()
    assert alices_job in {item["id"] for item in alices["items"]}


async def test_bobs_all_jobs_streams_never_carry_alices_events(
    client: httpx.AsyncClient, keyed_server: Server, alices_job: str
) -> None:
    # Bob's own job, submitted after alice's events: once bob has seen it end, every
    # older event of the store has gone past his streams.
    marker = await submit(client, "emit", {"n": 1}, headers=BOB)
    await read_sse(client, f"{PREFIX}/{marker}/events", headers=BOB)

    def is_marker_end(message: dict[str, Any]) -> bool:
        return message["job_id"] == marker and message["type"] == "succeeded"

    sse = await read_sse(
        client,
        f"{PREFIX}/events?after=0",
        headers=BOB,
        stop=lambda e: is_marker_end(json.loads(e.data)),
    )
    ws = await ws_follow(
        f"{keyed_server.ws_url}{PREFIX}/ws?after=0&access_token=kb", stop=is_marker_end
    )
    alice_sees = await read_sse(
        client,
        f"{PREFIX}/events?after=0",
        headers=ALICE,
        stop=lambda e: json.loads(e.data)["job_id"] == alices_job and e.event == "started",
    )

    async def ids_of(headers: dict[str, str]) -> set[str]:
        page = (await client.get(PREFIX, params={"limit": 200}, headers=headers)).json()
        return {item["id"] for item in page["items"]}

    bobs_jobs, alices_jobs = await ids_of(BOB), await ids_of(ALICE)
    assert marker in bobs_jobs and alices_job in alices_jobs
    assert {json.loads(e.data)["job_id"] for e in sse} <= bobs_jobs
    assert {m["job_id"] for m in ws.messages} <= bobs_jobs
    assert marker in {m["job_id"] for m in ws.messages}
    # The other way round too, and alice does see her own job there.
    assert alices_job in {json.loads(e.data)["job_id"] for e in alice_sees} <= alices_jobs


async def test_every_route_but_health_refuses_a_missing_or_invalid_key_with_401(
    client: httpx.AsyncClient, keyed_server: Server, alices_job: str
) -> None:
    openapi = (await client.get("/openapi.json")).json()
    for method, path, operation in operations(openapi):
        if "/health/" in path:
            continue
        body = SUBMIT_BODY if "requestBody" in operation else None
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "ka"}):
            status, _, content = await answer(
                client, method, PATH_PARAM.sub(alices_job, path), headers, body
            )
            assert status == 401, f"{method} {path} {headers}: {status}"
            assert content == {"detail": "missing or invalid API key"}

    for path in websocket_routes():
        for query in ("", "?access_token=nope"):
            outcome = await ws_follow(
                f"{keyed_server.ws_url}{PATH_PARAM.sub(alices_job, path)}{query}", within=10
            )
            assert outcome == WsOutcome(401, None, []), path


async def test_idempotency_keys_are_scoped_to_their_owner(client: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "the-same-key"}

    alices = await submit(client, "emit", {"n": 1}, headers={**ALICE, **key})
    bobs = await submit(client, "emit", {"n": 1}, headers={**BOB, **key})
    alices_again = await submit(client, "emit", {"n": 1}, headers={**ALICE, **key})
    bobs_again = await submit(client, "emit", {"n": 1}, headers={**BOB, **key})

    assert alices != bobs
    assert alices_again == alices
    assert bobs_again == bobs
    assert (await client.get(f"{PREFIX}/{bobs}", headers=ALICE)).status_code == 404
    assert (await client.get(f"{PREFIX}/{alices}", headers=BOB)).status_code == 404


async def test_a_follower_with_a_key_sees_its_own_job_over_sse(client: httpx.AsyncClient) -> None:
    job_id = await submit(client, "emit", {"n": 2}, headers=ALICE)
    async with aconnect_sse(
        client, "GET", f"{PREFIX}/{job_id}/events", headers=dict(ALICE)
    ) as source:
        events = [sse.event async for sse in source.aiter_sse()]
    assert events == ["queued", "started", "output", "output", "succeeded"]
