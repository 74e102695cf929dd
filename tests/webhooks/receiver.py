"""A real HTTP/1.1 webhook receiver on 127.0.0.1, run on the test's own event loop.

It records every request and answers from a script (then 200), so a test awaits what
the receiver saw — ``await receiver.next()`` — instead of sleeping. It can stop and
start again on the same port, to play a receiver that is down for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field

import h11


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # time.time() when the request had fully arrived


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hold: asyncio.Event | None = None  # answer only once this is set


def free_port() -> int:
    """A port nothing listens on (the kernel just gave it out and it was closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Receiver:
    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.tls = tls
        self.received: list[Received] = []
        self.script: list[Answer] = []
        self._queue: asyncio.Queue[Received] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def answer(self, *answers: Answer | int) -> None:
        """Answer the next requests so, in order; 200 after them."""
        self.script.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def next(self, within: float = 10.0) -> Received:
        """The next request that arrives (or has arrived and was not taken yet)."""
        async with asyncio.timeout(within):
            return await self._queue.get()

    async def take(self, count: int, within: float = 10.0) -> list[Received]:
        return [await self.next(within) for _ in range(count)]

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = b""
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    request, body = event, b""
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage) and request is not None:
                    await self._respond(conn, writer, self._record(request, body))
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        return
                    conn.start_next_cycle()
                else:
                    return  # closed, or a protocol error: drop the connection
        except (ConnectionError, ssl.SSLError, h11.RemoteProtocolError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _record(self, request: h11.Request, body: bytes) -> Received:
        received = Received(
            method=request.method.decode(),
            path=request.target.decode(),
            headers={k.decode().lower(): v.decode() for k, v in request.headers},
            body=body,
            at=time.time(),
        )
        self.received.append(received)
        self._queue.put_nowait(received)
        return received

    async def _respond(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, received: Received
    ) -> None:
        answer = self.script.pop(0) if self.script else Answer()
        if answer.hold is not None:
            await answer.hold.wait()
        headers = [(k, v) for k, v in answer.headers.items()]
        headers.append(("content-length", str(len(answer.body))))
        data = conn.send(h11.Response(status_code=answer.status, headers=headers)) or b""
        if answer.body:
            data += conn.send(h11.Data(data=answer.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        writer.write(data)
        await writer.drain()
