"""The engine is not up yet when the server and the worker start: PostgreSQL, then Redis.

A server (uvicorn, no embedded workers) and a standalone worker (``jobwire worker``)
start against a private engine that is stopped. The server serves at once: liveness
200, readiness 503 with the reason. Both say once that the store is unavailable and
keep trying with backoff. When the engine starts, both say it is reachable again, the
server becomes ready, the worker starts, and a job submitted over HTTP runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import httpx
import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.harness import SERVER_STARTED, WORKER_STARTED, free_port, until
from tests.support.engines import private_postgres, private_redis

ENV = {"JOBWIRE_EMBEDDED_WORKERS": "false", "JOBWIRE_LEASE_SECONDS": "5"}
UNAVAILABLE = r"start-up: the store is unavailable \(.+\); retrying with backoff"
BACK = r"start-up: the store is reachable again after"


class Engine(Protocol):
    url: str

    def stop(self) -> None: ...

    def start(self) -> None: ...


@pytest.fixture(params=["postgresql", "redis"])
def stopped_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    with private_postgres() if request.param == "postgresql" else private_redis() as server:
        server.stop()
        yield server


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_server_and_a_worker_started_before_their_engine_wait_for_it(
    chaos: Chaos, stopped_engine: Engine
) -> None:
    env = {**ENV, "JOBWIRE_URL": stopped_engine.url}
    port = free_port()
    base = f"http://127.0.0.1:{port}/jobs"
    server = chaos.procs.server(port, **env)
    worker = chaos.procs.cli_worker("worker", "tests.chaos.app:jobs", **env)

    # The server serves while it waits: alive, not ready, and it says why.
    server.wait_for(SERVER_STARTED, timeout=60)
    server.wait_for(UNAVAILABLE, timeout=0)
    assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200
    not_ready = httpx.get(f"{base}/health/ready", timeout=5)
    assert not_ready.status_code == 503, not_ready.text
    assert "the job store is unavailable: not open yet" in not_ready.json()["detail"]
    refused = httpx.post(base, json={"job": "work", "args": {"ms": 1}}, timeout=5)
    assert refused.status_code == 503 and refused.headers.get("retry-after"), refused.text
    worker.wait_for(UNAVAILABLE, timeout=60)
    assert server.alive() and worker.alive()

    stopped_engine.start()

    server.wait_for(BACK, timeout=20)
    until(
        lambda: httpx.get(f"{base}/health/ready", timeout=5).status_code == 200,
        20,
        "the server to be ready",
    )
    worker.wait_for(BACK, timeout=20)
    worker.wait_for(WORKER_STARTED, timeout=20)
    submitted = httpx.post(base, json={"job": "work", "args": {"ms": 1}}, timeout=5)
    assert submitted.status_code == 202, submitted.text
    view = httpx.get(f"{base}/{submitted.json()['id']}", params={"wait": 20}, timeout=30).json()
    assert view["state"] == "succeeded", view

    # A few lines about it, no stack traces, no line per try.
    for proc in (server, worker):
        lines = [line for line in proc.lines if "start-up" in line or "Traceback" in line]
        assert not any("Traceback" in line for line in lines), proc.output_tail(80)
        assert len(lines) <= 4, "\n".join(lines)
