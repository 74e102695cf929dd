"""WebSocket for one job, and the streams of all of a caller's jobs (SSE and WebSocket)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from jobwire.ids import new_job_id
from tests.channels.conftest import (
    ALLOWED_ORIGIN,
    PREFIX,
    Server,
    log_of,
    output_numbers,
    read_sse,
    submit,
    ws_follow,
    ws_refusal,
)

NORMAL_CLOSURE = 1000
POLICY_VIOLATION = 1008


async def test_websocket_sends_the_events_as_json_text_frames_and_closes_1000_after_the_end(
    server: Server, client: httpx.AsyncClient
) -> None:
    job_id = await submit(client, "emit", {"n": 4, "progress_every": 2})

    outcome = await ws_follow(f"{server.ws_url}{PREFIX}/{job_id}/ws")

    log = await log_of(client, job_id)
    assert outcome.status is None
    assert outcome.code == NORMAL_CLOSURE
    assert outcome.messages == log
    assert outcome.messages[-1]["type"] == "succeeded"
    assert output_numbers(outcome.messages) == [0, 1, 2, 3]


async def test_websocket_after_n_resumes_after_that_sequence(
    server: Server, client: httpx.AsyncClient
) -> None:
    job_id = await submit(client, "emit", {"n": 4})
    everything = await ws_follow(f"{server.ws_url}{PREFIX}/{job_id}/ws")

    resumed = await ws_follow(f"{server.ws_url}{PREFIX}/{job_id}/ws?after=3")
    finished = await ws_follow(
        f"{server.ws_url}{PREFIX}/{job_id}/ws?after={len(everything.messages)}"
    )

    assert [m["seq"] for m in resumed.messages] == list(range(4, len(everything.messages) + 1))
    assert resumed.messages == everything.messages[3:]
    assert resumed.code == NORMAL_CLOSURE
    assert finished == (None, NORMAL_CLOSURE, [])


async def test_websocket_delivers_events_live_while_the_job_runs(
    server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job_id = await submit(client, "gated", {"before": 1, "after": 2, "gate": str(gate)})

    def open_gate_on_first_output(message: dict[str, object]) -> bool:
        if message["type"] == "output":
            gate.touch()  # the job was blocked until now: later events were not yet written
        return False

    outcome = await ws_follow(
        f"{server.ws_url}{PREFIX}/{job_id}/ws", stop=open_gate_on_first_output
    )

    assert outcome.code == NORMAL_CLOSURE
    assert [m["type"] for m in outcome.messages] == [
        "queued",
        "started",
        "output",
        "output",
        "output",
        "succeeded",
    ]


@pytest.mark.parametrize("job_id", [new_job_id(), "not-a-job-id"], ids=["unknown", "malformed"])
async def test_websocket_for_an_unknown_job_is_closed_without_events(
    server: Server, job_id: str
) -> None:
    refused = await ws_refusal(f"{server.ws_url}{PREFIX}/{job_id}/ws")

    # Accepted, then closed with a reason and no message, as the README promises: a
    # browser's onclose sees both, where a refused handshake shows a failed connection.
    assert refused == (POLICY_VIOLATION, f"job {job_id} not found")


async def test_websocket_from_a_foreign_origin_is_closed_1008_naming_the_setting_that_allows_it(
    server: Server, client: httpx.AsyncClient
) -> None:
    job_id = await submit(client, "emit", {"n": 1})

    for path in (f"{PREFIX}/{job_id}/ws", f"{PREFIX}/ws"):
        code, reason = await ws_refusal(f"{server.ws_url}{path}", origin="http://evil.example")
        assert code == POLICY_VIOLATION, path
        assert reason == "origin http://evil.example not allowed (JOBWIRE_ALLOWED_ORIGINS)"
    log = server.log_tail(200)
    assert f"WebSocket {PREFIX}/{job_id}/ws from origin http://evil.example refused" in log
    assert "add it to JOBWIRE_ALLOWED_ORIGINS" in log


@pytest.mark.parametrize(
    "origin", ["same", ALLOWED_ORIGIN, None], ids=["same-origin", "configured", "none"]
)
async def test_websocket_from_its_own_a_configured_or_no_origin_is_accepted(
    server: Server, client: httpx.AsyncClient, origin: str | None
) -> None:
    job_id = await submit(client, "emit", {"n": 1})
    options = {} if origin is None else {"origin": server.url if origin == "same" else origin}

    outcome = await ws_follow(f"{server.ws_url}{PREFIX}/{job_id}/ws", **options)

    assert outcome.status is None
    assert outcome.code == NORMAL_CLOSURE
    assert outcome.messages == await log_of(client, job_id)


# -- the streams of all of a caller's jobs --------------------------------------------------


Message = dict[str, Any]


def is_end_of(job_id: str) -> Callable[[Message], bool]:
    return lambda m: m["job_id"] == job_id and m["type"] == "succeeded"


def data(sse: ServerSentEvent) -> Message:
    message: Message = json.loads(sse.data)
    return message


async def test_the_all_jobs_sse_stream_carries_state_changes_and_progress_resumable_by_cursor(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, "emit", {"n": 4, "progress_every": 2})
    await read_sse(client, f"{PREFIX}/{job_id}/events")  # the job has ended
    log = await log_of(client, job_id)

    def end(sse: ServerSentEvent) -> bool:
        return is_end_of(job_id)(data(sse))

    replay = await read_sse(client, f"{PREFIX}/events?after=0", stop=end)

    assert "output" not in {e.event for e in replay}
    mine = [e for e in replay if data(e)["job_id"] == job_id]
    assert [e.event for e in mine] == ["queued", "started", "progress", "progress", "succeeded"]
    assert [data(e) for e in mine] == [
        {**item, "cursor": int(e.id)}
        for e, item in zip(mine, [i for i in log if i["type"] != "output"], strict=True)
    ]
    cursors = [int(e.id) for e in replay]
    assert cursors == sorted(set(cursors))
    assert all(data(e)["cursor"] == int(e.id) for e in replay)

    # Resume after the job's "started": by Last-Event-ID, as a browser would, and by ?after=.
    started = mine[1].id
    by_header = await read_sse(
        client, f"{PREFIX}/events", headers={"Last-Event-ID": started}, stop=end
    )
    by_query = await read_sse(client, f"{PREFIX}/events?after={started}", stop=end)
    assert [e.id for e in by_header] == [e.id for e in replay if int(e.id) > int(started)]
    assert [e.id for e in by_query] == [e.id for e in by_header]


async def test_the_all_jobs_sse_stream_without_a_cursor_starts_from_now(
    client: httpx.AsyncClient,
) -> None:
    earlier = await submit(client, "emit", {"n": 1})
    await read_sse(client, f"{PREFIX}/{earlier}/events")

    async with asyncio.timeout(30), aconnect_sse(client, "GET", f"{PREFIX}/events") as source:
        assert source.response.status_code == 200
        later = await submit(client, "emit", {"n": 1})
        seen: list[Message] = []
        async for sse in source.aiter_sse():
            seen.append(data(sse))
            if is_end_of(later)(seen[-1]):
                break
    assert earlier not in {m["job_id"] for m in seen}
    assert [m["type"] for m in seen if m["job_id"] == later] == ["queued", "started", "succeeded"]


async def test_the_all_jobs_websocket_carries_state_changes_and_progress_resumable_by_cursor(
    server: Server, client: httpx.AsyncClient
) -> None:
    job_id = await submit(client, "emit", {"n": 4, "progress_every": 2})
    await read_sse(client, f"{PREFIX}/{job_id}/events")
    url = f"{server.ws_url}{PREFIX}/ws"

    replay = await ws_follow(f"{url}?after=0", stop=is_end_of(job_id))

    assert "output" not in {m["type"] for m in replay.messages}
    mine = [m for m in replay.messages if m["job_id"] == job_id]
    without_outputs = [i for i in await log_of(client, job_id) if i["type"] != "output"]
    assert [{k: v for k, v in m.items() if k != "cursor"} for m in mine] == without_outputs
    assert [m["type"] for m in mine] == ["queued", "started", "progress", "progress", "succeeded"]
    cursors = [m["cursor"] for m in replay.messages]
    assert cursors == sorted(set(cursors))

    started = mine[1]["cursor"]
    resumed = await ws_follow(f"{url}?after={started}", stop=is_end_of(job_id))
    assert resumed.messages == [m for m in replay.messages if m["cursor"] > started]
