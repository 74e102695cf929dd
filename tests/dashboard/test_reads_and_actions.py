"""What the dashboard's pages read and do, over HTTP against a real server: the job page,
the jobs list with its filters and pages, retry and purge, and the live streams."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from jobwire.store.base import WorkerInfo
from jobwire.store.sqlite import SQLiteStore
from tests.dashboard.conftest import KEYS, UI, Serve, csrf_of, sign_in, submit, wait_state


@asynccontextmanager
async def signed_in(server_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A browser-like client signed in as alice, and the header its actions carry."""
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        await sign_in(client, "alice-key")
        csrf = csrf_of((await client.get(f"{UI}/")).text)
        yield client, {"X-Jobwire-CSRF": csrf}


async def test_the_job_page_has_the_error_with_its_traceback_attempts_and_log(
    serve: Serve,
) -> None:
    server = await serve(api_keys=KEYS)
    async with signed_in(server.url) as (client, _):
        failed = await submit(client, "alice-key", "boom", {"reason": "on purpose"})
        done = await submit(client, "alice-key", "quick", {"x": 21})
        assert (await wait_state(client, "alice-key", failed))["state"] == "failed"
        assert (await wait_state(client, "alice-key", done))["state"] == "succeeded"
        page = (await client.get(f"{UI}/api/jobs/{failed}")).json()
        assert page["args"] == {"reason": "on purpose"} and page["owner"] == "alice"
        assert page["error"]["type"] == "ValueError"
        assert page["error"]["message"] == "boom: on purpose"
        assert "Traceback" in page["error"]["traceback"]
        assert 'raise ValueError(f"boom: {reason}")' in page["error"]["traceback"]
        [attempt] = page["attempt_list"]
        assert attempt["number"] == 1 and attempt["outcome"] == "failed"
        assert attempt["worker"] and attempt["ended_at"] >= attempt["started_at"]
        assert [e["type"] for e in page["events"]] == ["queued", "started", "failed"]
        assert page["events_complete"] and page["last_seq"] == 3
        ok = (await client.get(f"{UI}/api/jobs/{done}")).json()
        assert ok["result"] == 42 and ok["error"] is None


async def test_the_job_page_says_when_no_live_worker_runs_a_queued_job(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    bearer = {"Authorization": "Bearer alice-key"}
    async with signed_in(server.url) as (client, _):
        ids = {}
        for queue in ("nowhere", "default"):  # the embedded worker takes "default" only
            body = {"job": "quick", "args": {"x": 1}, "queue": queue, "delay": 3600}
            answer = await client.post("/jobs", json=body, headers=bearer)
            assert answer.status_code == 202, answer.text
            ids[queue] = answer.json()["id"]
        stranded = (await client.get(f"{UI}/api/jobs/{ids['nowhere']}")).json()
        assert (stranded["state"], stranded["no_worker"]) == ("queued", True)
        taken = (await client.get(f"{UI}/api/jobs/{ids['default']}")).json()
        assert (taken["state"], taken["no_worker"]) == ("queued", False)


async def test_retry_makes_a_new_job_linked_both_ways_and_it_runs(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with signed_in(server.url) as (client, csrf):
        failed = await submit(client, "alice-key", "boom", {"reason": "again"})
        running = await submit(client, "alice-key", "steps", {"n": 100, "pace": 0.5})
        await wait_state(client, "alice-key", failed)
        answer = await client.post(f"{UI}/api/jobs/{failed}/retry", headers=csrf)
        assert answer.status_code == 202 and answer.json()["created"]
        retry = answer.json()["id"]
        assert retry != failed
        again = await client.post(f"{UI}/api/jobs/{failed}/retry", headers=csrf)
        assert again.json()["id"] == retry and not again.json()["created"]
        original = (await client.get(f"{UI}/api/jobs/{failed}")).json()
        assert original["retried_by"] == retry
        new = (await client.get(f"{UI}/api/jobs/{retry}")).json()
        assert new["retry_of"] == failed and new["args"] == {"reason": "again"}
        assert (await wait_state(client, "alice-key", retry))["state"] == "failed"  # ran
        refused = await client.post(f"{UI}/api/jobs/{running}/retry", headers=csrf)
        assert refused.status_code == 409


async def test_purge_deletes_what_its_confirmation_counted(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with signed_in(server.url) as (client, csrf):
        failed = [await submit(client, "alice-key", "boom", {"reason": str(i)}) for i in range(3)]
        done = await submit(client, "alice-key", "quick", {"x": 1})
        bobs = await submit(client, "bob-key", "boom", {"reason": "bob"})
        for job_id in [*failed, done]:
            await wait_state(client, "alice-key", job_id)
        await wait_state(client, "bob-key", bobs)
        running = await submit(client, "alice-key", "steps", {"n": 100, "pace": 0.5})
        counted = await client.post(
            f"{UI}/api/purge/count", json={"states": ["failed"], "owner": "bob"}, headers=csrf
        )
        assert counted.status_code == 200
        body = counted.json()
        assert body["count"] == 3  # a viewer's purge is of their own jobs, whatever it asks
        assert body["filter"]["owner"] == "alice" and body["filter"]["finished_before"]
        later = await submit(client, "alice-key", "boom", {"reason": "after the count"})
        await wait_state(client, "alice-key", later)
        purged = await client.post(f"{UI}/api/purge", json=body["filter"], headers=csrf)
        assert purged.json()["deleted"] == 3
        left = {j["id"] for j in (await client.get(f"{UI}/api/jobs")).json()["items"]}
        assert left == {done, running, later}
        bob = {"Authorization": "Bearer bob-key"}
        assert (await client.get(f"/jobs/{bobs}", headers=bob)).status_code == 200
        wrong = await client.post(
            f"{UI}/api/purge/count", json={"states": ["running"]}, headers=csrf
        )
        assert wrong.status_code == 422


async def test_the_jobs_list_filters_looks_up_and_pages(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with signed_in(server.url) as (client, _):
        first = [await submit(client, "alice-key", "quick", {"x": i}) for i in range(3)]
        middle = time.time()
        await asyncio.sleep(0.01)  # ids carry milliseconds: the next ones are after `middle`
        later = [await submit(client, "alice-key", "boom", {"reason": str(i)}) for i in range(2)]
        for job_id in first + later:
            await wait_state(client, "alice-key", job_id)

        async def ids(**params: Any) -> list[str]:
            answer = await client.get(f"{UI}/api/jobs", params=params)
            assert answer.status_code == 200, answer.text
            return [j["id"] for j in answer.json()["items"]]

        newest_first = list(reversed(first + later))
        assert await ids() == newest_first
        assert await ids(state="failed") == list(reversed(later))
        assert await ids(job="quick") == list(reversed(first))
        assert await ids(queue="default", state="succeeded") == list(reversed(first))
        assert await ids(queue="elsewhere") == []
        assert await ids(since=middle) == list(reversed(later))
        assert await ids(until=middle) == list(reversed(first))
        assert await ids(id=first[1]) == [first[1]]
        page = (await client.get(f"{UI}/api/jobs", params={"limit": 2})).json()
        seen = [j["id"] for j in page["items"]]
        while page["next_cursor"]:
            page = (
                await client.get(
                    f"{UI}/api/jobs", params={"limit": 2, "cursor": page["next_cursor"]}
                )
            ).json()
            seen += [j["id"] for j in page["items"]]
        assert seen == newest_first


async def test_the_global_stream_sends_at_most_ten_batches_a_second_and_loses_nothing(
    serve: Serve,
) -> None:
    server = await serve(api_keys=KEYS)
    async with signed_in(server.url) as (client, _):
        batches: list[float] = []
        finished: set[str] = set()
        arrived = asyncio.Event()

        async def read() -> None:
            async with aconnect_sse(client, "GET", f"{UI}/api/events") as source:
                async for message in source.aiter_sse():
                    if message.event != "batch":
                        continue
                    batches.append(time.monotonic())
                    for event in json.loads(message.data):
                        if event["type"] == "succeeded":
                            finished.add(event["job_id"])
                    arrived.set()

        reader = asyncio.create_task(read())
        try:
            await asyncio.sleep(0.3)  # the stream starts at the newest cursor: be on it first
            submitted = {await submit(client, "alice-key", "quick", {"x": i}) for i in range(100)}
            async with asyncio.timeout(60):
                while not finished >= submitted:
                    await arrived.wait()
                    arrived.clear()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        span = batches[-1] - batches[0]
        assert len(batches) >= 2
        # At most one batch per 0.1 s (and the first one free).
        assert len(batches) - 1 <= span / 0.1 + 1, (len(batches), span)
        assert min(b - a for a, b in itertools.pairwise(batches)) >= 0.09


async def test_the_job_stream_carries_outputs_and_ends_with_the_job(serve: Serve) -> None:
    server = await serve(api_keys=KEYS)
    async with signed_in(server.url) as (client, _):
        job_id = await submit(client, "alice-key", "steps", {"n": 5, "pace": 0.05})
        seen: list[dict[str, Any]] = []
        async with aconnect_sse(client, "GET", f"{UI}/api/jobs/{job_id}/events") as source:
            async for message in source.aiter_sse():
                if message.event == "batch":
                    seen.extend(json.loads(message.data))
        assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
        assert [e["data"]["output"]["step"] for e in seen if e["type"] == "output"] == [
            1,
            2,
            3,
            4,
            5,
        ]
        assert seen[-1]["type"] == "succeeded"
        after = await client.get(
            f"{UI}/api/jobs/{job_id}/events", params={"after": seen[-1]["seq"]}
        )
        assert after.status_code == 204  # a browser's EventSource stops reconnecting


async def test_the_overview_counts_by_queue_and_the_workers_page_marks_the_lost(
    serve: Serve, tmp_path: Path
) -> None:
    server = await serve(api_keys=KEYS)
    async with signed_in(server.url) as (client, _):
        ran = [await submit(client, "alice-key", "quick", {"x": i}) for i in range(3)]
        ran.append(await submit(client, "alice-key", "boom", {"reason": "x"}))
        for job_id in ran:
            await wait_state(client, "alice-key", job_id)
        waiting = await client.post(
            "/jobs",
            json={"job": "quick", "args": {"x": 9}, "queue": "later"},
            headers={"Authorization": "Bearer bob-key"},
        )
        assert waiting.status_code == 202  # a queue no worker takes: it waits
        # A worker that stopped heartbeating a minute ago, written beside the server's own.
        store = SQLiteStore(tmp_path / "jobwire-0.db")
        await store.open()
        try:
            now = time.time()
            gone = WorkerInfo("gone-1", "elsewhere", 42, ("cpu",), 2, "0.1.0", now - 90, now - 60)
            await store.register_worker(gone)
        finally:
            await store.close()
        overview = (await client.get(f"{UI}/api/overview")).json()
        # The per-queue counters hold every owner's jobs (bob's waiting one too): not
        # for alice, who may see only hers.
        assert overview["counts"] == {} and overview["counts_visible"] is False
        assert overview["oldest_queued"] == {}  # alice has nothing waiting
        assert overview["workers"] == {"online": 1, "lost": 1}
        hour = overview["activity"]["overall"]
        assert (hour["succeeded"], hour["failed"]) == (3, 1)
        assert hour["run_p95"] is not None and hour["wait_p50"] is not None
        workers = {w["id"]: w for w in (await client.get(f"{UI}/api/workers")).json()["items"]}
        assert workers["gone-1"]["lost"] and workers["gone-1"]["host"] == "elsewhere"
        [mine] = [w for w in workers.values() if w["id"] != "gone-1"]
        assert not mine["lost"] and mine["queues"] == ["default"] and mine["pid"] > 0
        assert mine["running_jobs"] == []  # ids of every owner's jobs: not for one owner
