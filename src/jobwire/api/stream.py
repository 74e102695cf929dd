"""Following jobs live: Server-Sent Events and WebSocket, one job or all of the caller's.

Every stream is a view of the durable event log: it replays after the position the
client gives (``Last-Event-ID``, ``?after=N``) and then tails, so a client that drops
its connection, or a server that restarts, loses nothing. Streams pull pages from the
store at the client's pace; a slow reader holds one page in memory, never more.
"""

# No postponed annotations: FastAPI reads these signatures at runtime.

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, StreamingResponse

from jobwire.api.problems import invalid, not_found
from jobwire.feed.follow import follow, follow_all
from jobwire.ids import is_job_id
from jobwire.model import Event

if TYPE_CHECKING:
    from jobwire.app import Jobwire

# How often a WebSocket stream with nothing to send checks that its client is still there.
WS_TICK = 1.0

SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # reverse proxies must not buffer the stream
    "Content-Encoding": "identity",  # and compression middleware must leave it alone
}


def event_json(event: Event) -> str:
    return json.dumps(event.as_dict(), separators=(",", ":"))


def sse_frame(event_id: int, event_type: str, data: str) -> str:
    return f"id: {event_id}\nevent: {event_type}\ndata: {data}\n\n"


class StreamLimiter:
    """Open streams per owner, bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    @contextlib.contextmanager
    def slot(self, owner: str) -> Iterator[None]:
        if self.open[owner] >= self.limit:
            raise HTTPException(429, f"too many open streams for this caller (limit {self.limit})")
        self.open[owner] += 1
        try:
            yield
        finally:
            self.open[owner] -= 1
            if self.open[owner] <= 0:
                del self.open[owner]


def _after(last_event_id: str | None, after: int | None, field: str = "after") -> int:
    """``Last-Event-ID`` (a browser's reconnect) wins over ``?after=`` in the URL."""
    if last_event_id is not None and last_event_id.strip():
        try:
            value = int(last_event_id)
        except ValueError:
            raise invalid(("header", "Last-Event-ID"), "expected an event id (an integer)",
                          value=last_event_id) from None
        if value < 0:
            raise invalid(("header", "Last-Event-ID"), "must be >= 0", value=last_event_id)
        return value
    return after or 0


def add_stream_routes(router: APIRouter, jobwire: "Jobwire", owner_param: Any, ws_owner: Any) -> None:
    settings = jobwire.settings
    limiter = StreamLimiter(settings.max_streams_per_owner)
    # Sent with the first event: a block holding only "retry:" is read as an empty
    # event by some client libraries.
    retry_hint = f"retry: {settings.sse_retry_ms}\n"

    async def guarded(owner: str, frames: AsyncIterator[str]) -> AsyncIterator[str]:
        with limiter.slot(owner):
            async for frame in frames:
                yield frame

    # -- all of the caller's jobs ----------------------------------------------------------

    @router.get(
        "/events",
        summary="Every event of the caller's jobs (SSE), resumable by a store-wide cursor",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def all_events(
        request: Request,
        after: Annotated[int | None, Query(ge=0, description="Replay after this cursor")] = None,
        owner: str = owner_param,
    ) -> Response:
        last = request.headers.get("last-event-id")
        start = _after(last, after) if (last or after is not None) else await jobwire.store.last_cursor()
        if limiter.open[owner] >= limiter.limit:
            raise HTTPException(429, f"too many open streams for this caller (limit {limiter.limit})")

        async def frames() -> AsyncIterator[str]:
            hint = retry_hint
            tick = settings.sse_keepalive_seconds
            async for event in follow_all(jobwire.store, jobwire.hub, start, owner=owner, tick=tick):
                if event is None:
                    yield ": keep-alive\n\n"
                else:
                    yield hint + sse_frame(event.cursor, event.type.value, event_json(event))
                    hint = ""

        return StreamingResponse(guarded(owner, frames()), media_type="text/event-stream", headers=SSE_HEADERS)

    @router.websocket("/ws")
    async def all_events_ws(
        websocket: WebSocket,
        after: Annotated[int | None, Query(ge=0)] = None,
        owner: str = ws_owner,
    ) -> None:
        if not _origin_allowed(websocket, settings.allowed_origins):
            await websocket.close(code=1008, reason="origin not allowed")
            return
        if limiter.open[owner] >= limiter.limit:
            await websocket.close(code=1008, reason="too many open streams")
            return
        start = after if after is not None else await jobwire.store.last_cursor()
        await websocket.accept()
        with limiter.slot(owner):
            events = follow_all(jobwire.store, jobwire.hub, start, owner=owner, tick=WS_TICK)
            await _pump(websocket, events, close_after_terminal=False)

    # -- one job ---------------------------------------------------------------------------

    @router.get(
        "/{job_id}/events",
        summary="The job's events: SSE, or a JSON page with Accept: application/json",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}, "application/json": {}}},
            204: {"description": "The job has ended and nothing is newer: stop reconnecting"},
            404: {"description": "No such job, or not yours"},
        },
    )
    async def job_events(
        request: Request,
        job_id: str,
        after: Annotated[int | None, Query(ge=0)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
        owner: str = owner_param,
    ) -> Response:
        if not is_job_id(job_id):
            raise not_found(job_id)
        job = await jobwire.store.get(job_id, owner)
        if job is None:
            raise not_found(job_id)
        start = _after(request.headers.get("last-event-id"), after)
        accept = request.headers.get("accept", "")
        if "application/json" in accept and "text/event-stream" not in accept:
            events = await jobwire.store.events(job_id, start, limit)
            next_after = events[-1].seq if events else start
            return JSONResponse(
                {"items": [e.as_dict() for e in events], "next_after": next_after,
                 "state": job.state.value, "terminal": job.terminal}
            )
        if job.terminal and job.last_seq <= start:
            return Response(status_code=204)
        if limiter.open[owner] >= limiter.limit:
            raise HTTPException(429, f"too many open streams for this caller (limit {limiter.limit})")

        async def frames() -> AsyncIterator[str]:
            hint = retry_hint
            tick = settings.sse_keepalive_seconds
            async for event in follow(jobwire.store, jobwire.hub, job_id, start, tick=tick):
                if event is None:
                    yield ": keep-alive\n\n"
                else:
                    yield hint + sse_frame(event.seq, event.type.value, event_json(event))
                    hint = ""

        return StreamingResponse(guarded(owner, frames()), media_type="text/event-stream", headers=SSE_HEADERS)

    @router.websocket("/{job_id}/ws")
    async def job_events_ws(
        websocket: WebSocket,
        job_id: str,
        after: Annotated[int | None, Query(ge=0)] = None,
        owner: str = ws_owner,
    ) -> None:
        if not _origin_allowed(websocket, settings.allowed_origins):
            await websocket.close(code=1008, reason="origin not allowed")
            return
        job = await jobwire.store.get(job_id, owner) if is_job_id(job_id) else None
        if job is None:
            # The same answer for "no such job" and "not yours".
            await websocket.close(code=1008, reason=f"job {job_id} not found")
            return
        if limiter.open[owner] >= limiter.limit:
            await websocket.close(code=1008, reason="too many open streams")
            return
        await websocket.accept()
        with limiter.slot(owner):
            events = follow(jobwire.store, jobwire.hub, job_id, after or 0, tick=WS_TICK)
            await _pump(websocket, events, close_after_terminal=True)


async def _pump(websocket: WebSocket, events: AsyncIterator[Event | None], *, close_after_terminal: bool) -> None:
    """Send events as JSON text frames; stop when the client goes away."""
    receiver = asyncio.get_running_loop().create_task(_until_disconnect(websocket))
    try:
        async for event in events:
            if receiver.done():
                return
            if event is None:
                continue
            await websocket.send_text(event_json(event))
        if close_after_terminal:
            await websocket.close(code=1000)
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _until_disconnect(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


def _origin_allowed(websocket: WebSocket, allowed: tuple[str, ...]) -> bool:
    """Browsers send Origin on WebSocket handshakes and cross-site pages can open them,
    so only the server's own origin and the configured ones may connect."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: API clients authenticate with credentials
    if "*" in allowed or origin in allowed:
        return True
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1] == host
