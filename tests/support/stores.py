"""Helpers of the tests that drive a store directly (PostgreSQL, Redis): a new job,
and a listener that can be awaited for a notice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from jobwire.ids import new_job_id
from jobwire.store.base import NewJob, Notice

WAIT = 30.0  # the most any test waits for a wake-up, on a loaded machine

# Settings for an app whose workers must notice leases, cancels and new work quickly.
FAST = {
    "lease_seconds": 5.0,
    "cancel_grace_seconds": 0.5,
    "poll_seconds": 0.5,
    "process_concurrency": 1,
    "thread_concurrency": 2,
}


def new(**fields: Any) -> NewJob:
    fields.setdefault("id", new_job_id())
    fields.setdefault("job", "crunch")
    fields.setdefault("args", {"n": 1})
    return NewJob(**fields)


class Heard:
    """A store listener that keeps every notice and can be awaited for one."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self._changed = asyncio.Condition()

    def __call__(self, notices: Sequence[Notice]) -> None:
        self.notices.extend(notices)
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, notice: Notice, within: float = WAIT) -> None:
        async def heard() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: notice in self.notices)

        await asyncio.wait_for(heard(), within)

    def count(self, notice: Notice) -> int:
        return self.notices.count(notice)
