"""Server-Sent Events for one job, read with httpx-sse from a real uvicorn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.channels.conftest import (
    PREFIX,
    RETRY_MS,
    Server,
    log_of,
    output_numbers,
    payloads,
    read_sse,
    submit,
)


async def test_each_event_is_sent_with_its_sequence_as_id_its_type_as_event_and_json_data(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, "emit", {"n": 5, "progress_every": 2})

    events = await read_sse(client, f"{PREFIX}/{job_id}/events")

    log = await log_of(client, job_id)
    assert [e.id for e in events] == [str(item["seq"]) for item in log]
    assert [int(e.id) for e in events] == list(range(1, len(log) + 1))
    assert [e.event for e in events] == [item["type"] for item in log]
    assert payloads(events) == log
    assert [e.event for e in events][:2] == ["queued", "started"]
    assert output_numbers(payloads(events)) == [0, 1, 2, 3, 4]


async def test_the_stream_carries_a_retry_hint_and_ends_after_the_terminal_event(
    client: httpx.AsyncClient,
) -> None:
    job_id = await submit(client, "emit", {"n": 2})

    # read_sse returns only when the server ends the stream.
    events = await read_sse(client, f"{PREFIX}/{job_id}/events")

    assert events[0].retry == RETRY_MS
    assert events[-1].event == "succeeded"
    assert [e for e in events if e.event in ("succeeded", "failed", "cancelled")] == [events[-1]]


async def test_an_idle_stream_sends_keep_alive_comments_and_then_the_rest_of_the_job(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    job_id = await submit(client, "gated", {"before": 1, "after": 2, "gate": str(gate)})

    lines: list[str] = []
    async with asyncio.timeout(30), client.stream("GET", f"{PREFIX}/{job_id}/events") as response:
        assert response.status_code == 200
        seen_output = False
        keepalives = 0
        async for line in response.aiter_lines():
            lines.append(line)
            seen_output = seen_output or line == "event: output"
            if seen_output and line.startswith(":"):
                keepalives += 1
                if keepalives == 2:
                    gate.touch()  # the job has been idle through two keep-alives: go on
        assert keepalives >= 2, lines

    comments = [line for line in lines if line.startswith(":")]
    assert comments and all(line == ": keep-alive" for line in comments)
    types = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert types == ["queued", "started", "output", "output", "output", "succeeded"]


async def test_event_streams_are_not_compressed_even_when_the_client_accepts_gzip(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    job_id = await submit(
        client, "gated", {"before": 2, "after": 0, "gate": str(tmp_path / "never")}
    )
    gzip = {"Accept-Encoding": "gzip"}

    # The app compresses what it may: a JSON answer comes gzipped.
    view = await client.get(f"{PREFIX}/{job_id}", headers=gzip)
    assert view.headers.get("content-encoding") == "gzip"

    raw = b""
    async with (
        asyncio.timeout(30),
        client.stream("GET", f"{PREFIX}/{job_id}/events", headers=gzip) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers.get("content-encoding", "identity") == "identity"
        # The job is blocked on its gate, so these bytes arrive only if nothing buffers them.
        async for chunk in response.aiter_raw():
            raw += chunk
            if raw.count(b"event: output") == 2:
                break
    assert raw.startswith(b"retry: ")
    assert (await client.post(f"{PREFIX}/{job_id}/cancel")).status_code == 202


async def test_a_reconnect_after_the_terminal_event_gets_204(client: httpx.AsyncClient) -> None:
    job_id = await submit(client, "emit", {"n": 1})
    events = await read_sse(client, f"{PREFIX}/{job_id}/events")
    last = events[-1].id

    again = await client.get(f"{PREFIX}/{job_id}/events", headers={"Last-Event-ID": last})
    assert again.status_code == 204
    assert again.content == b""
    by_query = await client.get(f"{PREFIX}/{job_id}/events", params={"after": last})
    assert by_query.status_code == 204


async def test_last_event_id_wins_over_the_after_query_parameter(client: httpx.AsyncClient) -> None:
    job_id = await submit(client, "emit", {"n": 3})
    everything = await read_sse(client, f"{PREFIX}/{job_id}/events")
    last = everything[-1].id

    # A browser reconnecting to a URL that carries ?after=0 must not get the log again.
    finished = await client.get(
        f"{PREFIX}/{job_id}/events", params={"after": 0}, headers={"Last-Event-ID": last}
    )
    assert finished.status_code == 204

    resumed = await read_sse(
        client, f"{PREFIX}/{job_id}/events?after={last}", headers={"Last-Event-ID": "2"}
    )
    assert [e.id for e in resumed] == [e.id for e in everything[2:]]


async def test_a_client_that_drops_every_kth_event_and_resumes_gets_the_whole_log_once_in_order(
    client: httpx.AsyncClient,
) -> None:
    n, k = 200, 7
    job_id = await submit(client, "emit", {"n": n, "pace": 0.002})
    received: list[ServerSentEvent] = []
    connections = 0
    last: str | None = None
    async with asyncio.timeout(60):
        while True:
            headers = {"Last-Event-ID": last} if last is not None else {}
            async with aconnect_sse(
                client, "GET", f"{PREFIX}/{job_id}/events", headers=headers
            ) as source:
                if source.response.status_code == 204:
                    break
                assert source.response.status_code == 200
                connections += 1
                taken = 0
                async for sse in source.aiter_sse():
                    received.append(sse)
                    last = sse.id
                    taken += 1
                    if taken == k:
                        break  # hang up mid-stream

    log = await log_of(client, job_id)
    assert [e.id for e in received] == [str(item["seq"]) for item in log]
    assert payloads(received) == log
    assert output_numbers(log) == list(range(n))
    assert received[-1].event == "succeeded"
    assert connections >= len(log) // k


async def follow_with_reconnects(
    client: httpx.AsyncClient,
    path: str,
    received: list[ServerSentEvent],
    on_event: Callable[[ServerSentEvent], Any],
) -> int:
    """Follow like an EventSource: reconnect with Last-Event-ID, wait the server's retry
    hint between attempts, stop at a 204. Returns how many streams were opened."""
    opened = 0
    retry = RETRY_MS / 1000
    last_id = ""  # as EventSource: kept across connections, set only by a non-empty id
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            async with aconnect_sse(client, "GET", path, headers=headers) as source:
                if source.response.status_code == 204:
                    return opened
                assert source.response.status_code == 200
                opened += 1
                async for sse in source.aiter_sse():
                    if sse.retry is not None:
                        retry = sse.retry / 1000
                    if sse.id:
                        last_id = sse.id
                    if not sse.data:
                        continue  # EventSource dispatches no event without data
                    received.append(sse)
                    on_event(sse)
        except httpx.TransportError:
            pass  # the server went away: try again after the retry hint, as browsers do
        await asyncio.sleep(retry)


async def test_a_follower_sees_the_job_to_its_end_across_a_server_killed_and_restarted(
    servers: Callable[..., Server], tmp_path: Path
) -> None:
    server = servers(JOBWIRE_LEASE_SECONDS="2")
    gate = tmp_path / "gate"
    received: list[ServerSentEvent] = []
    halfway = asyncio.Event()

    def on_event(sse: ServerSentEvent) -> None:
        if sum(e.event == "output" for e in received) == 3:
            halfway.set()

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        job_id = await submit(client, "gated", {"before": 3, "after": 3, "gate": str(gate)})
        follower = asyncio.create_task(
            follow_with_reconnects(client, f"{PREFIX}/{job_id}/events", received, on_event)
        )
        async with asyncio.timeout(30):
            await halfway.wait()
        first_pid = server.pid

        server.kill()
        await asyncio.to_thread(server.start)  # the same port and database
        gate.touch()
        async with asyncio.timeout(60):
            streams = await follower

        log = await log_of(client, job_id)
    assert server.pid != first_pid
    assert streams >= 2
    assert [e.id for e in received] == [str(item["seq"]) for item in log]
    assert payloads(received) == log
    assert received[-1].event == "succeeded"
    # The first run died with its server; handed back uncharged, it ran again to its end.
    assert [json.loads(e.data)["data"]["attempt"] for e in received if e.event == "started"] == [
        1,
        1,
    ]
    assert [e for e in log if e["type"] == "queued" and e["data"].get("lost")] != []
    assert output_numbers(log) == [0, 1, 2, 0, 1, 2, 3, 4, 5]
