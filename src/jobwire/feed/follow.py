"""Replay a log after a position, then tail it: every channel (SSE, WebSocket, the
Python API, the CLI) reads here, so they all resume the same way.

Followers pull pages from the store at their own pace: a slow consumer holds at most
one page in memory and simply reads further behind, never growing the server.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from jobwire.feed.hub import Hub
from jobwire.model import Event
from jobwire.store.base import Store

# A backstop for a missed wake-up (another process's datagram dropped, say): the log is
# re-read at least this often while a follower waits.
RECHECK_SECONDS = 2.0
PAGE = 500


async def follow(
    store: Store,
    hub: Hub,
    job_id: str,
    after: int = 0,
    *,
    tick: float | None = None,
) -> AsyncIterator[Event | None]:
    """The job's events after ``after`` in order, ending after the terminal one.

    With ``tick``, ``None`` is yielded whenever that many seconds pass without an event
    (for keep-alives).
    """
    quiet_since = time.monotonic()
    with hub.watch_job(job_id) as watch:
        while True:
            events = await store.events(job_id, after, PAGE)
            for event in events:
                after = event.seq
                yield event
                if event.type.terminal:
                    return
            if events:
                quiet_since = time.monotonic()
                if len(events) == PAGE:
                    continue
            else:
                job = await store.get(job_id)
                if job is None or (job.terminal and job.last_seq <= after):
                    return
            wait = RECHECK_SECONDS
            if tick is not None:
                idle = time.monotonic() - quiet_since
                if idle >= tick:
                    yield None
                    quiet_since = time.monotonic()
                    idle = 0.0
                wait = min(wait, tick - idle)
            await watch.wait(wait)


async def follow_all(
    store: Store,
    hub: Hub,
    after: int,
    *,
    owner: str | None = None,
    tick: float | None = None,
) -> AsyncIterator[Event | None]:
    """Every event of the jobs ``owner`` may see, after the store-wide cursor ``after``."""
    quiet_since = time.monotonic()
    with hub.watch_all() as watch:
        while True:
            events = await store.feed(after, owner, PAGE)
            for event in events:
                after = event.cursor
                yield event
            if events:
                quiet_since = time.monotonic()
                if len(events) == PAGE:
                    continue
            wait = RECHECK_SECONDS
            if tick is not None:
                idle = time.monotonic() - quiet_since
                if idle >= tick:
                    yield None
                    quiet_since = time.monotonic()
                    idle = 0.0
                wait = min(wait, tick - idle)
            await watch.wait(wait)
