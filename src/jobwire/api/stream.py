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
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import (
    APIRouter,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
    status,
)
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from jobwire.api.body import require_json
from jobwire.api.events import SCHEMA_VERSION, EventPage
from jobwire.api.problems import http_errors, invalid, not_found
from jobwire.api.schemas import StreamToken, iso
from jobwire.api.tokens import ALL_JOBS, QUERY, StreamTokens
from jobwire.errors import StoreUnavailable
from jobwire.feed.follow import follow, follow_all, follow_all_pages, follow_pages
from jobwire.feed.results import resolve_results
from jobwire.ids import is_job_id
from jobwire.model import Event, EventType

if TYPE_CHECKING:
    from jobwire.app import Jobwire

log = logging.getLogger("jobwire.api")

# How often a WebSocket stream with nothing to send checks that its client is still there.
WS_TICK = 1.0
# A WebSocket opened while the store is away: 1013 "try again later".
STORE_AWAY = 1013
STORE_AWAY_REASON = "the job store is unavailable; try again later"

SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # reverse proxies must not buffer the stream
    "Content-Encoding": "identity",  # and compression middleware must leave it alone
}


# The stream of all of a caller's jobs: every state change and progress, not outputs
# (partial results belong to the job's own stream).
FEED_TYPES = frozenset(EventType) - {EventType.OUTPUT}


def event_json(event: Event) -> str:
    return json.dumps(event.as_dict(), separators=(",", ":"))


def feed_event_json(event: Event) -> str:
    """An event of the all-jobs stream: with its store-wide ``cursor``, to resume from."""
    return json.dumps({**event.as_dict(), "cursor": event.cursor}, separators=(",", ":"))


KEEP_ALIVE = b": keep-alive\n\n"


def sse_frame(event_id: int, event_type: str | None, data: str) -> str:
    """One SSE event; without a type it is a default ``message`` event (``onmessage``)."""
    if event_type is None:
        return f"id: {event_id}\ndata: {data}\n\n"
    return f"id: {event_id}\nevent: {event_type}\ndata: {data}\n\n"


PLAIN_DESCRIPTION = (
    "Send every event as a default `message` event (no `event:` line), for "
    "`EventSource.onmessage`; the type is in the data's `type`"
)
# What a stream answers to a ``token=`` that is not a live stream token of its scope.
BAD_TOKEN: dict[int | str, dict[str, Any]] = {
    401: {"description": "An invalid or expired stream token (mint a new one)"}
}
TOKEN_DESCRIPTION = (
    "A stream token from `POST …/stream-token`, for clients that cannot send headers"
)


class SharedFrames:
    """The SSE text of pages that many followers receive, encoded once.

    Followers of a job woken by the same change are handed the very same page (one read
    shared by all, see :meth:`Hub.events`). Only short pages are kept (the live tail):
    a long replay page is seldom shared and would hold its size in memory. An entry
    keeps its page alive, so an ``id`` found here is still that page.
    """

    MAX_EVENTS = 16
    MAX_ENTRIES = 256

    def __init__(self, *, plain: bool = False) -> None:
        self._entries: OrderedDict[int, tuple[list[Event], bytes]] = OrderedDict()
        self.plain = plain

    def frames(self, page: list[Event]) -> bytes:
        if len(page) > self.MAX_EVENTS:
            return self.encode(page, plain=self.plain)
        entry = self._entries.get(id(page))
        if entry is not None and entry[0] is page:
            return entry[1]
        frames = self.encode(page, plain=self.plain)
        self._entries[id(page)] = (page, frames)
        if len(self._entries) > self.MAX_ENTRIES:
            self._entries.popitem(last=False)
        return frames

    @staticmethod
    def encode(page: list[Event], *, plain: bool = False) -> bytes:
        return "".join(
            sse_frame(e.seq, None if plain else e.type.value, event_json(e)) for e in page
        ).encode()


class StreamLimiter:
    """Open streams per owner, bounded.

    A slot is taken before the stream is answered (before a WebSocket is accepted or
    an SSE response is returned), so callers racing for the last slot cannot all pass
    the check; it is given back when the stream ends, however it ends.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def acquire(self, owner: str) -> Callable[[], None]:
        """Take a slot or raise 429; returns the release, safe to call more than once."""
        if self.open[owner] >= self.limit:
            raise HTTPException(429, f"too many open streams for this caller (limit {self.limit})")
        self.open[owner] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.open[owner] -= 1
            if self.open[owner] <= 0:
                del self.open[owner]

        return release


class EventStreamResponse(StreamingResponse):
    """An SSE response holding a stream slot until it is done, however it ends."""

    def __init__(
        self, frames: AsyncIterator[str] | AsyncIterator[bytes], release: Callable[[], None]
    ) -> None:
        super().__init__(frames, media_type="text/event-stream", headers=SSE_HEADERS)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


# The highest positions a client may name. A job's events are numbered in 32-bit
# integers (PostgreSQL's ``integer``), the store-wide cursor in 64-bit ones; past them a
# position is the client's mistake (422), never the store's (503).
MAX_SEQ = 2**31 - 1
MAX_CURSOR = 2**63 - 1
SeqPosition = Annotated[
    int | None,
    Query(ge=0, le=MAX_SEQ, description="Replay after this event number of the job"),
]
CursorPosition = Annotated[
    int | None,
    Query(ge=0, le=MAX_CURSOR, description="Replay after this store-wide cursor"),
]


# A job's id in a path: documented as the UUID it is. Anything else is no job of the
# caller's (404, as for an id of someone else's job), so the server does not refuse it.
JobIdPath = Annotated[str, Path(json_schema_extra={"format": "uuid"}, description="The job's id")]
# Last-Event-ID as the document shows it; the routes read and check it themselves.
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "Resume after this event (sent by browsers on reconnect); wins over ?after=",
    "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
}


def parse_position(text: str, field: tuple[str, str], maximum: int) -> int:
    """An event position sent as text: ASCII digits only (``int()`` would also take
    other scripts' digits, signs, spaces and underscores), 0 to ``maximum``."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()):
        raise invalid(field, "expected an event position: digits 0-9", value=text)
    if len(digits.lstrip("0")) > 19 or int(digits) > maximum:
        raise invalid(field, f"must be at most {maximum}", "less_than_equal", text)
    return int(digits)


def _after(last_event_id: str | None, after: int | None, maximum: int) -> int:
    """``Last-Event-ID`` (a browser's reconnect) wins over ``?after=`` in the URL."""
    if last_event_id is not None and last_event_id.strip():
        return parse_position(last_event_id, ("header", "Last-Event-ID"), maximum)
    return after or 0


def _refuse_origin(websocket: WebSocket) -> str:
    """The close reason for a foreign origin, logged with the setting that would allow it."""
    origin = websocket.headers.get("origin", "")
    log.warning(
        "WebSocket %s from origin %s refused: not the server's own origin; add it to "
        "JOBWIRE_ALLOWED_ORIGINS to allow it",
        websocket.url.path,
        origin,
    )
    return f"origin {origin} not allowed (JOBWIRE_ALLOWED_ORIGINS)"


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Accept, then close with a code and a reason: a browser sees both, where a
    refused handshake shows only a failed connection."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.accept()
        await websocket.close(code=code, reason=reason)


def add_stream_routes(
    router: APIRouter,
    jobwire: "Jobwire",
    owner_param: Any,
    stream_owner_param: Any,
    tokens: StreamTokens,
) -> None:
    """The streams, whose owner may also come from a stream token (``stream_owner_param``),
    and the routes minting those tokens (plain ``owner_param``: a token mints none)."""
    settings = jobwire.settings
    limiter = StreamLimiter(settings.max_streams_per_owner)
    shared_frames = SharedFrames()
    shared_plain_frames = SharedFrames(plain=True)
    # Sent with the first event: a block holding only "retry:" is read as an empty
    # event by some client libraries.
    retry_hint = f"retry: {settings.sse_retry_ms}\n"

    # -- all of the caller's jobs ----------------------------------------------------------

    @router.get(
        "/events",
        summary="Every event of the caller's jobs (SSE), resumable by a store-wide cursor",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, **BAD_TOKEN},
        openapi_extra={"parameters": [LAST_EVENT_ID]},
    )
    async def all_events(
        request: Request,
        after: CursorPosition = None,
        plain: Annotated[bool, Query(description=PLAIN_DESCRIPTION)] = False,
        token: Annotated[str | None, Query(description=TOKEN_DESCRIPTION)] = None,
        owner: str = stream_owner_param,
    ) -> Response:
        last = request.headers.get("last-event-id")
        if last or after is not None:
            start = _after(last, after, MAX_CURSOR)
        else:
            with http_errors():
                start = await jobwire.store.last_cursor()
        release = limiter.acquire(owner)

        async def frames() -> AsyncIterator[str]:
            hint = retry_hint
            tick = settings.sse_keepalive_seconds
            pages = follow_all_pages(
                jobwire.store, jobwire.hub, start, owner=owner, tick=tick, types=FEED_TYPES
            )
            async for page in pages:
                if page is None:
                    yield ": keep-alive\n\n"
                else:
                    yield hint + "".join(
                        sse_frame(e.cursor, None if plain else e.type.value, feed_event_json(e))
                        for e in page
                    )
                    hint = ""

        return EventStreamResponse(frames(), release)

    # -- one workflow ----------------------------------------------------------------------

    @router.get(
        "/workflows/{workflow_id}/events",
        tags=["workflows"],
        summary="Every event of the workflow's steps (SSE), resumable by a store-wide cursor",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}}},
            204: {"description": "The workflow has ended: nothing more will come"},
            404: {"description": "No such workflow, or not yours"},
            **BAD_TOKEN,
        },
        openapi_extra={"parameters": [LAST_EVENT_ID]},
    )
    async def workflow_events(
        request: Request,
        workflow_id: Annotated[str, Path(max_length=64)],
        after: CursorPosition = None,
        plain: Annotated[bool, Query(description=PLAIN_DESCRIPTION)] = False,
        token: Annotated[str | None, Query(description=TOKEN_DESCRIPTION)] = None,
        owner: str = stream_owner_param,
    ) -> Response:
        with http_errors():
            found = (
                await jobwire.store.get_workflow(workflow_id, owner)
                if is_job_id(workflow_id)
                else None
            )
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"workflow {workflow_id} not found")
        last = request.headers.get("last-event-id")
        if last or after is not None:
            start = _after(last, after, MAX_CURSOR)
        elif found.state.value != "running":
            return Response(status_code=204)
        else:
            with http_errors():
                start = await jobwire.store.last_cursor()
        release = limiter.acquire(owner)
        steps: dict[str, bool] = {}  # job id → whether it is a step of this workflow

        async def is_step(job_id: str) -> bool:
            if job_id not in steps:
                job = await jobwire.store.get(job_id, owner)
                steps[job_id] = job is not None and job.options.get("workflow") == workflow_id

            return steps[job_id]

        async def ended() -> str | None:
            now = await jobwire.store.get_workflow(workflow_id)
            return None if now is None or now.state.value == "running" else now.state.value

        async def frames() -> AsyncIterator[str]:
            hint = retry_hint
            keepalive = settings.sse_keepalive_seconds
            # A step's failure can end the workflow with no event of its own after it:
            # quiet pages come each second to look whether it has ended.
            pages = follow_all_pages(
                jobwire.store,
                jobwire.hub,
                start,
                owner=owner,
                tick=min(keepalive, 1.0),
                types=FEED_TYPES,
            )
            wrote = time.monotonic()
            async for page in pages:
                mine = [e for e in page or () if await is_step(e.job_id)]
                if mine:
                    yield hint + "".join(
                        sse_frame(e.cursor, None if plain else e.type.value, feed_event_json(e))
                        for e in mine
                    )
                    hint, wrote = "", time.monotonic()
                elif page is None and time.monotonic() - wrote >= keepalive:
                    yield ": keep-alive\n\n"
                    wrote = time.monotonic()
                # The workflow ends after its last step's terminal event is in the feed.
                if page is not None and not any(e.type.terminal for e in mine):
                    continue
                state = await ended()
                if state is not None:
                    data = json.dumps({"workflow_id": workflow_id, "state": state})
                    cursor = mine[-1].cursor if mine else start
                    yield hint + sse_frame(cursor, None if plain else "workflow", data)
                    return

        return EventStreamResponse(frames(), release)

    @router.websocket("/ws")
    async def all_events_ws(
        websocket: WebSocket,
        after: CursorPosition = None,
        token: Annotated[str | None, Query(description=TOKEN_DESCRIPTION)] = None,
        owner: str = stream_owner_param,
    ) -> None:
        if not _origin_allowed(websocket, settings.allowed_origins):
            await _refuse(websocket, 1008, _refuse_origin(websocket))
            return
        try:
            start = after if after is not None else await jobwire.store.last_cursor()
        except StoreUnavailable:
            await _refuse(websocket, STORE_AWAY, STORE_AWAY_REASON)
            return
        try:
            release = limiter.acquire(owner)
        except HTTPException:
            await _refuse(websocket, 1008, "too many open streams")
            return
        try:
            await websocket.accept()
            events = follow_all(
                jobwire.store, jobwire.hub, start, owner=owner, tick=WS_TICK, types=FEED_TYPES
            )
            await _pump(websocket, events, feed_event_json, close_after_terminal=False)
        finally:
            release()

    # -- one job ---------------------------------------------------------------------------

    @router.get(
        "/{job_id}/events",
        summary="The job's events: SSE, or a JSON page with Accept: application/json",
        response_class=StreamingResponse,
        responses={
            200: {
                "model": EventPage,
                "description": "SSE frames whose data is one event (see the JobEvent schemas), "
                "or with Accept: application/json a page of them",
                "content": {"text/event-stream": {}},
            },
            204: {"description": "The job has ended and nothing is newer: stop reconnecting"},
            404: {"description": "No such job, or not yours"},
            **BAD_TOKEN,
        },
        openapi_extra={"parameters": [LAST_EVENT_ID]},
    )
    async def job_events(
        request: Request,
        job_id: JobIdPath,
        after: SeqPosition = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
        plain: Annotated[bool, Query(description=PLAIN_DESCRIPTION)] = False,
        token: Annotated[str | None, Query(description=TOKEN_DESCRIPTION)] = None,
        owner: str = stream_owner_param,
    ) -> Response:
        if not is_job_id(job_id):
            raise not_found(job_id)
        with http_errors():
            job = await jobwire.store.get(job_id, owner)
        if job is None:
            raise not_found(job_id)
        start = _after(request.headers.get("last-event-id"), after, MAX_SEQ)
        accept = request.headers.get("accept", "")
        if "application/json" in accept and "text/event-stream" not in accept:
            with http_errors():
                events = await resolve_results(
                    jobwire.store, await jobwire.store.events(job_id, start, limit)
                )
            next_after = events[-1].seq if events else start
            return JSONResponse(
                {
                    "schema_version": SCHEMA_VERSION,
                    "items": [e.as_dict() for e in events],
                    "next_after": next_after,
                    "state": job.state.value,
                    "terminal": job.terminal,
                }
            )
        if job.terminal and job.last_seq <= start:
            return Response(status_code=204)
        release = limiter.acquire(owner)
        encoder = shared_plain_frames if plain else shared_frames

        async def frames() -> AsyncIterator[bytes]:
            hint = retry_hint.encode()
            tick = settings.sse_keepalive_seconds
            async for page in follow_pages(jobwire.store, jobwire.hub, job_id, start, tick=tick):
                if page is None:
                    yield KEEP_ALIVE
                else:
                    # One write per page: a replay of a long log is not a write per event.
                    yield hint + encoder.frames(page)
                    hint = b""

        return EventStreamResponse(frames(), release)

    @router.websocket("/{job_id}/ws")
    async def job_events_ws(
        websocket: WebSocket,
        job_id: JobIdPath,
        after: SeqPosition = None,
        token: Annotated[str | None, Query(description=TOKEN_DESCRIPTION)] = None,
        owner: str = stream_owner_param,
    ) -> None:
        if not _origin_allowed(websocket, settings.allowed_origins):
            await _refuse(websocket, 1008, _refuse_origin(websocket))
            return
        try:
            job = await jobwire.store.get(job_id, owner) if is_job_id(job_id) else None
        except StoreUnavailable:
            await _refuse(websocket, STORE_AWAY, STORE_AWAY_REASON)
            return
        if job is None:
            # The same answer for "no such job" and "not yours".
            await _refuse(websocket, 1008, f"job {job_id} not found")
            return
        try:
            release = limiter.acquire(owner)
        except HTTPException:
            await _refuse(websocket, 1008, "too many open streams")
            return
        try:
            await websocket.accept()
            events = follow(jobwire.store, jobwire.hub, job_id, after or 0, tick=WS_TICK)
            await _pump(websocket, events, event_json, close_after_terminal=True)
        finally:
            release()

    # -- stream tokens ---------------------------------------------------------------------

    def minted(request: Request, owner: str, scope: str, tail: str) -> StreamToken:
        token, expires = tokens.issue(owner, scope)
        url = request.url
        base = str(url.replace(query="", fragment=""))[: -len(tail)]
        ws_base = ("wss" if url.scheme == "https" else "ws") + base[base.index(":") :]
        suffix = "" if scope == ALL_JOBS else f"/{scope}"
        return StreamToken(
            token=token,
            expires_at=iso(expires) or "",
            events_url=f"{base}{suffix}/events?{QUERY}={token}",
            ws_url=f"{ws_base}{suffix}/ws?{QUERY}={token}",
        )

    @router.post(
        "/stream-token",
        response_model=StreamToken,
        summary="A short-lived token to follow every event of the caller's jobs (P/events, P/ws)",
    )
    async def all_events_token(request: Request, owner: str = owner_param) -> StreamToken:
        require_json(request, body_optional=True)  # as every POST: no cross-site form
        return minted(request, owner, ALL_JOBS, "/stream-token")

    @router.post(
        "/{job_id}/stream-token",
        response_model=StreamToken,
        summary="A short-lived token to follow this job's events (SSE or WebSocket)",
        responses={404: {"description": "No such job, or not yours"}},
    )
    async def job_events_token(
        request: Request, job_id: JobIdPath, owner: str = owner_param
    ) -> StreamToken:
        require_json(request, body_optional=True)  # as every POST: no cross-site form
        if not is_job_id(job_id):
            raise not_found(job_id)
        with http_errors():
            job = await jobwire.store.get(job_id, owner)
        if job is None:
            raise not_found(job_id)
        return minted(request, owner, job_id, f"/{job_id}/stream-token")


async def _pump(
    websocket: WebSocket,
    events: AsyncIterator[Event | None],
    encode: Callable[[Event], str],
    *,
    close_after_terminal: bool,
) -> None:
    """Send events as JSON text frames; stop when the client goes away."""
    receiver = asyncio.get_running_loop().create_task(_until_disconnect(websocket))
    try:
        async for event in events:
            if receiver.done():
                return
            if event is None:
                continue
            await websocket.send_text(encode(event))
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
