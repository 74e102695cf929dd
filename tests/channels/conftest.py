"""Real uvicorn servers in subprocesses, and clients for the streams they serve.

Each server is ``python -m uvicorn tests.channels.app:app`` on a free loopback port over
its own SQLite file, configured through ``JOBWIRE_*`` variables. A test that kills its
server restarts it on the same port and file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from jobwire.api.events import validate_event

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/jobs"
# Short enough that an idle stream shows its keep-alives within a test's patience.
KEEPALIVE = 0.3
RETRY_MS = 150
ALLOWED_ORIGIN = "http://allowed.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One uvicorn process; ``start()`` returns once it answers its liveness route."""

    def __init__(self, directory: Path, env: Mapping[str, str], port: int | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.db = directory / "jobwire.db"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")}
        self.env = {
            **inherited,
            # This tree's jobwire first, whatever copy the environment has installed.
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "JOBWIRE_URL": f"sqlite:///{self.db}",
            "JOBWIRE_SSE_KEEPALIVE_SECONDS": str(KEEPALIVE),
            "JOBWIRE_SSE_RETRY_MS": str(RETRY_MS),
            "JOBWIRE_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
            **env,
        }
        self.log_path = directory / "server.log"
        self._log: TextIO | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not running"
        return self.proc.pid

    def start(self, within: float = 30.0) -> Server:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._close_log()
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed by stop()/kill()
        self._log.write(f"--- start {self.starts + 1}\n")
        self._log.flush()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.channels.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        deadline = time.monotonic() + within
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{PREFIX}/health/live").status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.url} not live after {within} s:\n{self.log_tail()}")
                time.sleep(0.05)  # polling a process that announces nothing else

    def kill(self) -> None:
        """SIGKILL: no shutdown, no drain, leases left to expire."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers of this test's own: ``servers(JOBWIRE_X="1")``."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = Server(tmp_path / f"server-{len(started)}", env)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One anonymous server shared by the tests that do not kill it."""
    running = Server(tmp_path_factory.mktemp("channels"), {}).start()
    yield running
    running.stop()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


# -- helpers ---------------------------------------------------------------------------------


async def submit(
    client: httpx.AsyncClient,
    job: str,
    args: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
) -> str:
    response = await client.post(PREFIX, json={"job": job, "args": dict(args)}, headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def read_sse(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    stop: Callable[[ServerSentEvent], bool] | None = None,
    within: float = 30.0,
) -> list[ServerSentEvent]:
    """Every event until the server ends the stream, or until ``stop`` says so."""
    events: list[ServerSentEvent] = []
    async with (
        asyncio.timeout(within),
        aconnect_sse(client, "GET", path, headers=dict(headers or {})) as source,
    ):
        assert source.response.status_code == 200, await source.response.aread()
        async for sse in source.aiter_sse():
            events.append(sse)
            if stop is not None and stop(sse):
                break
    return events


class WsOutcome(NamedTuple):
    """How a WebSocket attempt ended: refused at the handshake (``status``), or accepted
    and then closed (``code``), with the messages received in between."""

    status: int | None
    code: int | None
    messages: list[dict[str, Any]]


async def ws_follow(
    url: str,
    *,
    stop: Callable[[dict[str, Any]], bool] | None = None,
    within: float = 30.0,
    **options: Any,
) -> WsOutcome:
    """Every message until the server closes the socket, or until ``stop`` says so."""
    messages: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(within), connect(url, **options) as ws:
            try:
                async for frame in ws:
                    assert isinstance(frame, str), f"expected text frames, got {frame!r}"
                    messages.append(json.loads(frame))
                    if stop is not None and stop(messages[-1]):
                        break
            except ConnectionClosed:
                pass
        return WsOutcome(None, ws.close_code, messages)
    except InvalidStatus as refused:
        return WsOutcome(refused.response.status_code, None, messages)


async def ws_refusal(url: str, within: float = 10.0, **options: Any) -> tuple[int | None, str]:
    """The close code and reason of a WebSocket the server accepts and closes at once."""
    async with asyncio.timeout(within), connect(url, **options) as ws:
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                raise AssertionError(f"expected no message, got {frame!r}")
    return ws.close_code, ws.close_reason or ""


async def log_of(
    client: httpx.AsyncClient, job_id: str, headers: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The job's whole log, through the JSON page form of the events route."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await client.get(
            f"{PREFIX}/{job_id}/events",
            params={"after": after, "limit": 1000},
            headers={"Accept": "application/json", **(headers or {})},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        for item in page["items"]:
            validate_event(item)  # every event these tests read fits the published schema
        items.extend(page["items"])
        if not page["items"]:
            return items
        after = page["next_after"]


def payloads(events: list[ServerSentEvent]) -> list[dict[str, Any]]:
    decoded = [json.loads(e.data) for e in events]
    for event in decoded:
        validate_event(event)
    return decoded


def output_numbers(events: list[dict[str, Any]]) -> list[int]:
    return [e["data"]["output"]["i"] for e in events if e["type"] == "output"]
