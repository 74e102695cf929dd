"""``AsyncClient``: jobwire's HTTP API from asyncio code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from jobwire.client import _protocol as p
from jobwire.client._sse import SSEDecoder


class AsyncClient:
    """``AsyncClient("http://host/jobs", api_key=...)``: the URL the router is mounted at.

    Every method returns the server's JSON (the job view, a page of them, an event) and
    raises the jobwire error its status stands for (see :mod:`jobwire.errors`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # Reads wait past the longest long-poll; a stream's keep-alives come well within.
        self._base = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            headers=p.base_headers(api_key),
            timeout=httpx.Timeout(timeout, read=max(timeout, p.LONG_POLL_SECONDS + 10)),
            transport=transport,
        )

    async def _call(self, call: p.Call) -> Any:
        return p.answer(call, await self._http.send(call.request(self._http, self._base)))

    async def submit(
        self,
        job: str,
        args: Mapping[str, Any] | None = None,
        *,
        delay: float | None = None,
        run_at: datetime | str | None = None,
        priority: int | None = None,
        queue: str | None = None,
        webhook: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Submit ``job`` with ``args``; the job view of the new (or, for an idempotency
        key already used with the same payload, the original) job."""
        call = p.submit_call(
            job,
            args,
            delay=delay,
            run_at=run_at,
            priority=priority,
            queue=queue,
            webhook=webhook,
            idempotency_key=idempotency_key,
        )
        view: dict[str, Any] = await self._call(call)
        return view

    async def get(self, job_id: str, *, wait: float | None = None) -> dict[str, Any]:
        """The job view; with ``wait``, once the job ends or ``wait`` seconds pass."""
        view: dict[str, Any] = await self._call(p.get_call(job_id, wait))
        return view

    async def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The job view once the job has ended (long-polls); ``TimeoutError`` after
        ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = p.LONG_POLL_SECONDS if deadline is None else deadline - time.monotonic()
            view = await self.get(job_id, wait=max(0.0, min(left, p.LONG_POLL_SECONDS)))
            if view["state"] in p.TERMINAL_STATES:
                return view
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} is still {view['state']} after {timeout} s")

    async def cancel(self, job_id: str) -> dict[str, Any]:
        view: dict[str, Any] = await self._call(p.cancel_call(job_id))
        return view

    async def list(
        self,
        *,
        state: str | list[str] | None = None,
        job: str | None = None,
        queue: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page ``{"items", "next_cursor"}``, newest first."""
        page: dict[str, Any] = await self._call(p.list_call(state, job, queue, limit, cursor))
        return page

    async def events(self, job_id: str, *, after: int = 0) -> AsyncIterator[dict[str, Any]]:
        """The job's events after ``after``, live, until its terminal event. A dropped
        connection is resumed where it stopped (``Last-Event-ID``): nothing is lost."""
        last, failures = str(after), 0
        decoder = SSEDecoder()
        while True:
            call = p.events_call(job_id, last)
            try:
                response = await self._http.send(call.request(self._http, self._base), stream=True)
                try:
                    if response.status_code == 204:
                        return  # ended, and nothing newer than ``last``
                    if not response.is_success:
                        await response.aread()
                        raise p.error_for(call, response)
                    async for line in response.aiter_lines():
                        sse = decoder.feed(line)
                        if sse is None:
                            continue
                        failures, last = 0, decoder.last_event_id or last
                        event = p.decode_event(sse)
                        yield event
                        if event["type"] in p.TERMINAL_EVENTS:
                            return
                finally:
                    await response.aclose()
            except httpx.TransportError:
                pass
            failures += 1  # cut, or ended before the terminal event: a server going away
            if failures > p.MAX_RECONNECTS:
                raise httpx.ConnectError(f"the event stream of job {job_id} keeps failing")
            await asyncio.sleep(p.reconnect_delay(decoder.retry_ms, failures))

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
