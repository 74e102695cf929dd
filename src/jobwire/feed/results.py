"""Put each ``succeeded`` event's result back before a channel shows it.

The store keeps a job's result once, on the job; its ``succeeded`` event only refers to
it (``model.RESULT_REF``), so a large result is neither stored twice nor read with
every page of a log that does not reach the end. Every reader of the log that shows
events (the followers, the JSON events page, the dashboard) passes its page here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from jobwire.model import JSON, Event, refers_to_result, with_result
from jobwire.store.base import Store


async def resolve_results(store: Store, events: Sequence[Event]) -> list[Event]:
    """``events`` with each ``succeeded`` one carrying its job's result (None once the
    job is gone); one read per such event, none for a page without one."""
    wanted = {event.job_id for event in events if refers_to_result(event)}
    if not wanted:
        return list(events)
    ids = sorted(wanted)
    jobs = await asyncio.gather(*(store.get(job_id) for job_id in ids))
    results: dict[str, JSON] = {
        job_id: job.result if job is not None else None
        for job_id, job in zip(ids, jobs, strict=True)
    }
    return [
        with_result(event, results[event.job_id]) if refers_to_result(event) else event
        for event in events
    ]


async def resolve_results_of(store: Store, read: Awaitable[Sequence[Event]]) -> list[Event]:
    """:func:`resolve_results` of what ``read`` returns: one shared read, resolved once."""
    return await resolve_results(store, await read)
