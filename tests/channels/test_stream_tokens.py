"""Stream tokens: with API keys on, a client that cannot send headers (a browser's
EventSource) follows a job with ``?token=`` from ``POST P/{id}/stream-token``; and
``?plain=1`` streams for ``EventSource.onmessage``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException

from jobwire import Jobwire
from jobwire.api.tokens import StreamTokens
from tests.channels.conftest import PREFIX, Server, log_of, read_sse, submit, ws_follow
from tests.support.jobs import jobs as support_jobs

ALICE = {"Authorization": "Bearer ka"}
BOB = {"Authorization": "Bearer kb"}


@pytest.fixture
def keyed(servers: Callable[..., Server]) -> Server:
    return servers(JOBWIRE_API_KEYS="ka=alice,kb=bob")


async def test_a_minted_token_follows_its_job_by_sse_and_websocket_without_a_key(
    keyed: Server,
) -> None:
    async with httpx.AsyncClient(base_url=keyed.url, timeout=30) as client:
        job_id = await submit(client, "emit", {"n": 3}, headers=ALICE)
        minted = await client.post(f"{PREFIX}/{job_id}/stream-token", headers=ALICE)
        assert minted.status_code == 200, minted.text
        body = minted.json()
        token = body["token"]
        assert body["events_url"] == f"{keyed.url}{PREFIX}/{job_id}/events?token={token}"
        assert body["ws_url"] == f"{keyed.ws_url}{PREFIX}/{job_id}/ws?token={token}"
        expires = datetime.fromisoformat(body["expires_at"])
        lifetime = (expires - datetime.now(UTC)).total_seconds()
        assert 60 < lifetime <= 121  # two minutes by default

        sse = await read_sse(client, body["events_url"])
        ws = await ws_follow(body["ws_url"])
        log = await log_of(client, job_id, ALICE)

    assert [json.loads(e.data) for e in sse] == log
    assert log[-1]["type"] == "succeeded"
    assert ws.code == 1000 and ws.messages == log


async def test_a_token_opens_only_its_own_jobs_stream_and_nothing_else(keyed: Server) -> None:
    async with httpx.AsyncClient(base_url=keyed.url, timeout=30) as client:
        job_id = await submit(client, "emit", {"n": 1}, headers=ALICE)
        other = await submit(client, "emit", {"n": 1}, headers=ALICE)
        token = (await client.post(f"{PREFIX}/{job_id}/stream-token", headers=ALICE)).json()[
            "token"
        ]
        json_page = {"Accept": "application/json"}

        own = await client.get(f"{PREFIX}/{job_id}/events?token={token}", headers=json_page)
        assert own.status_code == 200
        # Another job of the same owner, the all-jobs stream, the job view, a cancel.
        for method, path in [
            ("GET", f"{PREFIX}/{other}/events"),
            ("GET", f"{PREFIX}/events"),
        ]:
            refused = await client.request(method, f"{path}?token={token}", headers=json_page)
            assert refused.status_code == 401, path
            assert "stream token" in refused.json()["detail"]
        for method, path in [
            ("GET", f"{PREFIX}/{job_id}"),
            ("POST", f"{PREFIX}/{job_id}/cancel"),
            ("POST", f"{PREFIX}/{job_id}/stream-token"),
            ("GET", PREFIX),
        ]:
            refused = await client.request(method, f"{path}?token={token}")
            assert refused.status_code == 401, path
        # A token altered by one character is refused.
        forged = token[:-1] + ("A" if token[-1] != "A" else "B")
        bad = await client.get(f"{PREFIX}/{job_id}/events?token={forged}", headers=json_page)
        assert bad.status_code == 401
        ws = await ws_follow(f"{keyed.ws_url}{PREFIX}/{other}/ws?token={token}", within=10)
        assert ws.status == 401 and ws.messages == []


async def test_bob_cannot_mint_a_token_for_alices_job_and_alices_global_token_shows_only_hers(
    keyed: Server,
) -> None:
    async with httpx.AsyncClient(base_url=keyed.url, timeout=30) as client:
        alices = await submit(client, "emit", {"n": 1}, headers=ALICE)
        refused = await client.post(f"{PREFIX}/{alices}/stream-token", headers=BOB)
        assert refused.status_code == 404

        minted = (await client.post(f"{PREFIX}/stream-token", headers=ALICE)).json()
        assert minted["events_url"] == f"{keyed.url}{PREFIX}/events?token={minted['token']}"
        bobs = await submit(client, "emit", {"n": 1}, headers=BOB)
        mine = await submit(client, "emit", {"n": 2}, headers=ALICE)
        events = await read_sse(
            client,
            minted["events_url"] + "&after=0",
            stop=lambda e: json.loads(e.data)["job_id"] == mine and e.event == "succeeded",
        )
    seen = {json.loads(e.data)["job_id"] for e in events}
    assert seen == {alices, mine} and bobs not in seen


def test_a_token_expires_and_names_its_scope() -> None:
    tokens = StreamTokens(b"k" * 32, seconds=60)
    token, expires = tokens.issue("alice", "job-1", now=1000.0)

    assert expires == 1060.0
    assert tokens.owner(token, "job-1", now=1059.0) == "alice"
    assert tokens.owner(token, "job-1", now=1060.0) is None  # expired
    assert tokens.owner(token, "job-2", now=1001.0) is None  # another job
    assert tokens.owner(token, None, now=1001.0) is None  # the all-jobs stream
    assert StreamTokens(b"x" * 32, 60).owner(token, "job-1", now=1001.0) is None


async def test_plain_streams_send_every_event_as_a_default_message_event(
    server: Server, client: httpx.AsyncClient
) -> None:
    job_id = await submit(client, "emit", {"n": 2, "progress_every": 1})

    plain = await read_sse(client, f"{PREFIX}/{job_id}/events?plain=1")
    named = await read_sse(client, f"{PREFIX}/{job_id}/events")

    assert {e.event for e in plain} == {"message"}
    assert [e.data for e in plain] == [e.data for e in named]
    assert [json.loads(e.data)["type"] for e in plain] == [e.event for e in named]


async def test_a_token_works_with_the_apps_own_auth_dependency(tmp_path: Path) -> None:
    async def current_user(x_user: Annotated[str | None, Header()] = None) -> str:
        if x_user is None:
            raise HTTPException(401, "who are you?")
        return x_user

    jobs = Jobwire(f"sqlite:///{tmp_path / 'jobs.db'}", auth=current_user, stream_secret="s3")
    jobs.registry = {"noop": support_jobs.registry["noop"]}
    api = FastAPI()
    api.include_router(jobs.router, prefix=PREFIX)
    page = {"Accept": "application/json"}
    async with (
        jobs,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as http,
    ):
        job = await jobs.enqueue("noop", {}, owner="carol")
        minted = await http.post(f"{PREFIX}/{job.id}/stream-token", headers={"X-User": "carol"})
        token = minted.json()["token"]

        with_token = await http.get(f"{PREFIX}/{job.id}/events?token={token}", headers=page)
        without = await http.get(f"{PREFIX}/{job.id}/events", headers=page)
        as_carol = await http.get(f"{PREFIX}/{job.id}/events", headers={**page, "X-User": "carol"})
        as_dave = await http.get(f"{PREFIX}/{job.id}/events", headers={**page, "X-User": "dave"})

    assert minted.status_code == 200
    assert with_token.status_code == 200 and with_token.json()["items"][0]["type"] == "queued"
    assert without.status_code == 401 and without.json()["detail"] == "who are you?"
    assert as_carol.status_code == 200
    assert as_dave.status_code == 404
