"""Replay a job's log after a sequence number, then tail it: every channel reads here."""

from __future__ import annotations

from collections.abc import AsyncIterator

from jobwire.feed.hub import Hub
from jobwire.model import Event
from jobwire.store.base import Store

# A backstop for a missed wake-up (another process's datagram dropped, say): the log is
# re-read at least this often while a follower waits.
RECHECK_SECONDS = 2.0


async def follow(
    store: Store, hub: Hub, job_id: str, after: int = 0, *, page: int = 500
) -> AsyncIterator[Event]:
    """Yield the job's events after ``after`` in order, ending after the terminal one."""
    with hub.watch_job(job_id) as watch:
        while True:
            events = await store.events(job_id, after, page)
            for event in events:
                after = event.seq
                yield event
                if event.type.terminal:
                    return
            if len(events) == page:
                continue
            if not events:
                job = await store.get(job_id)
                if job is None:
                    return
                if job.terminal and job.last_seq <= after:
                    return
            await watch.wait(RECHECK_SECONDS)
