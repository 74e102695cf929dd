"""Cancels queued jobs whose ``expires_at`` has passed, with reason ``expired``.

A worker never runs an expired job (it checks at claim, see worker.attempt); this duty
is for the jobs no worker claims in time (none runs their name, or all are busy), so
they end ``cancelled`` soon after their expiry instead of sitting queued. Several
processes may run it at once: a job that is no longer queued (claimed, cancelled, or
expired by another process meanwhile) is refused by the store and skipped.
"""

from __future__ import annotations

import time

from jobwire import model
from jobwire.errors import InvalidTransition, JobNotFound
from jobwire.model import State
from jobwire.services.base import Service
from jobwire.store.base import ListQuery, Store

PAGE = 500


class Expirer(Service):
    name = "expirer"

    def __init__(self, store: Store, interval: float = 5.0, budget: int = 10_000) -> None:
        super().__init__(interval)
        self.store = store
        self.budget = budget  # queued jobs looked at per run, newest first

    async def run_once(self) -> int:
        now = time.time()
        expired = 0
        seen = 0
        before: str | None = None
        while seen < self.budget:
            page = await self.store.list(
                ListQuery(states=(State.QUEUED,), before_id=before, limit=PAGE)
            )
            for job in page.items:
                if model.expired(job, now):
                    try:
                        await self.store.cancel_expired(job.id)
                    except (InvalidTransition, JobNotFound):
                        continue  # claimed, cancelled or expired elsewhere meanwhile
                    expired += 1
            seen += len(page.items)
            if page.next_cursor is None:
                break
            before = page.next_cursor
        return expired
