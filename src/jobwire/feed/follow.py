"""Replay a log after a position, then tail it: every channel (SSE, WebSocket, the
Python API, the CLI) reads here, so they all resume the same way.

Followers pull pages from the store at their own pace: a slow consumer holds at most
one page in memory and simply reads further behind, never growing the server. Followers
of the same job woken by the same change share one read (:meth:`Hub.events`), so a
wake-up costs one read per job, not one per follower.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection

from jobwire.errors import StoreUnavailable
from jobwire.feed.hub import Hub
from jobwire.model import Event, EventType
from jobwire.outage import STORE_BACKOFF
from jobwire.store.base import Store

# A backstop for a missed wake-up (another process's datagram dropped, say): a follower
# that has not read for this long reads again. Followers woken by events never need it;
# idle ones re-read on a grid of the monotonic clock, so that the followers of a job,
# idle since the same event, re-read together and share one read.
RECHECK_SECONDS = 2.0
PAGE = 500
# While the store is away a follower stays open (keep-alives go on) and reads again
# after a backoff, or at once when the store's listener is back (a resync wake-up).
_AWAY = STORE_BACKOFF


def _recheck_at(last_read: float) -> float:
    """The first grid point at least RECHECK_SECONDS after the last read."""
    due = last_read + RECHECK_SECONDS
    return due - (due % RECHECK_SECONDS) + RECHECK_SECONDS


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
    async for page in follow_pages(store, hub, job_id, after, tick=tick):
        if page is None:
            yield None
            continue
        for event in page:
            yield event


async def follow_pages(
    store: Store,
    hub: Hub,
    job_id: str,
    after: int = 0,
    *,
    tick: float | None = None,
) -> AsyncIterator[list[Event] | None]:
    """:func:`follow` a page at a time (what one read returned), for channels that send
    a page in one write: a replay of a long log is then hundreds of writes, not
    hundreds of thousands. The last page ends with the terminal event."""
    quiet_since = time.monotonic()
    await store.follow_news()
    with hub.watch_job(job_id) as watch:
        since = hub.generation(job_id)
        read = True
        last_read = time.monotonic()
        failures = 0  # reads in a row that found the store away
        while True:
            if read:
                last_read = time.monotonic()
                try:
                    events = await hub.events(job_id, after, PAGE, since)
                    job = None if events else await hub.job(job_id, since)
                    failures = 0
                except StoreUnavailable:
                    failures += 1
            if read and not failures:
                for i, event in enumerate(events):
                    if event.type.terminal:
                        yield events if i == len(events) - 1 else events[: i + 1]
                        return
                if events:
                    after = events[-1].seq
                    yield events
                    quiet_since = time.monotonic()
                    if len(events) == PAGE:
                        continue
                elif job is None or (job.terminal and job.last_seq <= after):
                    return
            now = time.monotonic()
            recheck_at = _recheck_at(last_read)
            wait = _AWAY.delay(failures) if failures else recheck_at - now
            if tick is not None:
                wait = min(wait, max(0.0, tick - (now - quiet_since)))
            woken = await watch.wait(wait)
            since = hub.generation(job_id)
            now = time.monotonic()
            read = woken or now >= recheck_at or (failures > 0 and now - last_read >= wait)
            if tick is not None and now - quiet_since >= tick:
                yield None
                quiet_since = time.monotonic()


async def follow_all(
    store: Store,
    hub: Hub,
    after: int,
    *,
    owner: str | None = None,
    tick: float | None = None,
    types: Collection[EventType] | None = None,
) -> AsyncIterator[Event | None]:
    """Every event of the jobs ``owner`` may see, after the store-wide cursor ``after``;
    with ``types``, only events of those types (the cursor still moves past the rest)."""
    async for page in follow_all_pages(store, hub, after, owner=owner, tick=tick, types=types):
        if page is None:
            yield None
            continue
        for event in page:
            yield event


async def follow_all_pages(
    store: Store,
    hub: Hub,
    after: int,
    *,
    owner: str | None = None,
    tick: float | None = None,
    types: Collection[EventType] | None = None,
) -> AsyncIterator[list[Event] | None]:
    """:func:`follow_all` a page at a time; pages are never empty."""
    quiet_since = time.monotonic()
    await store.follow_news()
    with hub.watch_all() as watch:
        since = hub.generation()
        read = True
        last_read = time.monotonic()
        failures = 0  # reads in a row that found the store away
        while True:
            if read:
                last_read = time.monotonic()
                try:
                    events = await hub.feed(after, owner, PAGE, since)
                    failures = 0
                except StoreUnavailable:
                    events, failures = [], failures + 1
                if events:
                    after = events[-1].cursor
                    page = events if types is None else [e for e in events if e.type in types]
                    if page:
                        yield page
                        quiet_since = time.monotonic()
                    if len(events) == PAGE:
                        continue
            now = time.monotonic()
            recheck_at = _recheck_at(last_read)
            wait = _AWAY.delay(failures) if failures else recheck_at - now
            if tick is not None:
                wait = min(wait, max(0.0, tick - (now - quiet_since)))
            woken = await watch.wait(wait)
            since = hub.generation()
            now = time.monotonic()
            read = woken or now >= recheck_at or (failures > 0 and now - last_read >= wait)
            if tick is not None and now - quiet_since >= tick:
                yield None
                quiet_since = time.monotonic()
