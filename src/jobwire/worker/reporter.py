"""Carries an attempt's progress and output events to the store without blocking the job.

Jobs call ``ctx.progress`` from the loop, from threads, or (through the pipe reader)
from a job process. Events wait in a buffer and one write at a time carries everything
buffered; while a write is in flight, consecutive progress updates collapse into the
latest, so a job reporting in a tight loop costs the store one row per write, not one
per call. Outputs are never collapsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable

from jobwire.errors import JobwireError, StaleClaim
from jobwire.model import EventDraft, EventType
from jobwire.store.base import Store

log = logging.getLogger("jobwire.worker")


class Reporter:
    def __init__(
        self,
        store: Store,
        job_id: str,
        token: str,
        on_lost: Callable[[], None],
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._token = token
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._pending: list[EventDraft] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._used = False  # anything pushed, from any thread

    def push(self, draft: EventDraft) -> None:
        """Thread-safe; raises TypeError at once if the data is not JSON."""
        json.dumps(draft.data)
        self._used = True
        if threading.get_ident() == self._loop_thread:
            self._append(draft)
        else:
            # A RuntimeError here means the loop is gone: the worker is exiting.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._append, draft)

    def _append(self, draft: EventDraft) -> None:
        if self._closed:
            return
        pending = self._pending
        if pending and draft.type is EventType.PROGRESS and pending[-1].type is EventType.PROGRESS:
            pending[-1] = draft
        else:
            pending.append(draft)
        if self._flusher is None or self._flusher.done():
            self._flusher = self._loop.create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending and not self._closed:
            batch, self._pending = self._pending, []
            try:
                await self._store.report(self._job_id, self._token, batch)
            except StaleClaim:
                self._closed = True
                self._pending.clear()
                self._on_lost()
            except JobwireError as exc:
                log.warning("job %s: progress not recorded: %s", self._job_id, exc)

    @property
    def used(self) -> bool:
        """Whether anything was pushed so far, from any thread."""
        return self._used

    async def drain(self) -> None:
        """Wait until every event pushed so far is written."""
        if not self._used:
            return  # most jobs report nothing: no extra turn of the loop for them
        # Events from threads may still be in flight to the loop: let them land first.
        await asyncio.sleep(0)
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    def close(self) -> None:
        self._closed = True
        self._pending.clear()
