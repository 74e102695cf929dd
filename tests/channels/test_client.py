"""``jobwire.client`` against a real uvicorn server: submit, get, wait, cancel, list,
events (resumed across a server restart), and the server's errors as jobwire's."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from jobwire.client import (
    AlreadyTerminal,
    AsyncClient,
    Client,
    InvalidArguments,
    JobNotFound,
    StoreUnavailable,
    TooManyRequests,
    Unauthorized,
)
from jobwire.ids import new_job_id
from tests.channels.conftest import PREFIX, ROOT, Server, log_of, output_numbers


def test_the_sync_client_submits_follows_waits_lists_and_cancels(server: Server) -> None:
    with Client(server.url + PREFIX) as jobs:
        view = jobs.submit("emit", {"n": 3, "progress_every": 1}, priority=5)
        assert view["job"] == "emit" and view["priority"] == 5

        events = list(jobs.events(view["id"]))
        done = jobs.wait(view["id"], timeout=30)
        page = jobs.list(job="emit", limit=200)

        with httpx.Client() as http:
            log = http.get(
                f"{server.url}{PREFIX}/{view['id']}/events",
                headers={"Accept": "application/json"},
            ).json()["items"]
        assert events == log
        assert events[-1]["type"] == "succeeded" and events[-1]["data"]["result"] == 3
        assert done["state"] == "succeeded" and done["result"] == 3
        assert view["id"] in {item["id"] for item in page["items"]}
        # Resuming after an event gives only what followed it.
        assert list(jobs.events(view["id"], after=2)) == log[2:]

        with pytest.raises(AlreadyTerminal) as ended:
            jobs.cancel(view["id"])
        assert ended.value.state == "succeeded"


async def test_the_async_client_does_the_same_with_await(server: Server, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    async with AsyncClient(server.url + PREFIX) as jobs:
        view = await jobs.submit("gated", {"before": 1, "after": 0, "gate": str(gate)})
        with pytest.raises(TimeoutError):
            await jobs.wait(view["id"], timeout=0.2)
        seen = []
        async for event in jobs.events(view["id"]):
            seen.append(event["type"])
            if event["type"] == "output":
                cancelled = await jobs.cancel(view["id"])
                assert cancelled["cancel_requested"] is True
        final = await jobs.get(view["id"])
        listed = await jobs.list(state=["cancelled"], limit=200)

    assert seen[-1] == "cancelled" and final["state"] == "cancelled"
    assert view["id"] in {item["id"] for item in listed["items"]}


def test_the_servers_errors_are_jobwires_exceptions(servers: Callable[..., Server]) -> None:
    keyed = servers(JOBWIRE_API_KEYS="ka=alice", JOBWIRE_MAX_STREAMS_PER_OWNER="1")
    with Client(keyed.url + PREFIX) as anonymous, pytest.raises(Unauthorized) as refused:
        anonymous.list()
    assert refused.value.status == 401 and refused.value.detail == "missing or invalid API key"

    with Client(keyed.url + PREFIX, api_key="ka") as jobs:
        unknown = new_job_id()
        with pytest.raises(JobNotFound) as missing:
            jobs.get(unknown)
        assert missing.value.job_id == unknown

        with pytest.raises(InvalidArguments) as invalid:
            jobs.submit("emit", {"n": "many"})
        assert [e["loc"] for e in invalid.value.errors] == [["body", "args", "n"]]
        assert "body.args.n" in str(invalid.value)
        with pytest.raises(InvalidArguments, match="unknown job 'nope'"):
            jobs.submit("nope")

        # One stream open; the second one of this owner is over the limit.
        job = jobs.submit("gated", {"before": 1, "after": 0, "gate": "/nonexistent/gate"})
        first = jobs.events(job["id"])
        assert next(first)["type"] == "queued"
        with pytest.raises(TooManyRequests):
            next(jobs.events(job["id"]))
        first.close()
        jobs.cancel(job["id"])


def test_an_unreachable_store_is_store_unavailable() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"detail": "the job store is unavailable: gone"})

    with (
        Client("http://jobs.test/jobs", transport=httpx.MockTransport(answer)) as jobs,
        pytest.raises(StoreUnavailable, match="gone"),
    ):
        jobs.submit("emit", {"n": 1})


async def test_events_resume_after_the_server_is_killed_and_restarted(
    servers: Callable[..., Server], tmp_path: Path
) -> None:
    server = servers(JOBWIRE_LEASE_SECONDS="2")
    gate = tmp_path / "gate"
    received: list[dict[str, object]] = []
    async with AsyncClient(server.url + PREFIX) as jobs:
        view = await jobs.submit("gated", {"before": 3, "after": 3, "gate": str(gate)})
        async with asyncio.timeout(60):
            async for event in jobs.events(view["id"]):
                received.append(event)
                if sum(e["type"] == "output" for e in received) == 3 and not gate.exists():
                    server.kill()
                    await asyncio.to_thread(server.start)  # the same port and database
                    gate.touch()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        log = await log_of(client, view["id"])
    assert received == log  # each event once, in order, none lost across the restart
    assert output_numbers(log)[-6:] == [0, 1, 2, 3, 4, 5]


def test_the_client_imports_without_fastapi() -> None:
    code = (
        "import sys; sys.modules['fastapi'] = None; sys.modules['starlette'] = None\n"
        "from jobwire.client import Client, AsyncClient\n"
        "assert 'fastapi' not in {m.split('.')[0] for m in sys.modules if sys.modules[m]}\n"
        "print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    json.dumps(done.stdout)  # plain text, nothing else printed
