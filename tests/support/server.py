"""A real uvicorn server on a free loopback port, run on a thread of the test process."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType

import httpx
import uvicorn
from fastapi import FastAPI


class ServerThread:
    """``with ServerThread(app) as server:`` serves ``app`` at ``server.url``.

    The socket is bound before the server starts (port 0: the kernel picks a free one),
    so there is no window in which another process could take the port.
    """

    def __init__(self, app: FastAPI, ready_path: str = "/jobs/health/live") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready_path = ready_path
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=10
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="uvicorn", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # surfaced by start() and stop()
            self.error = exc

    async def start(self, within: float = 20.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.url) as client:
            while True:
                if self.error is not None or not self._thread.is_alive():
                    raise RuntimeError(f"the server did not start: {self.error!r}")
                try:
                    if (await client.get(self._ready_path)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.url}{self._ready_path} not live after {within} s")
                await asyncio.sleep(0.02)

    async def stop(self, within: float = 30.0) -> None:
        self._server.should_exit = True
        await asyncio.to_thread(self._thread.join, within)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError(f"the server at {self.url} did not stop within {within} s")
        if self.error is not None:
            raise RuntimeError("the server failed") from self.error

    async def __aenter__(self) -> ServerThread:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
