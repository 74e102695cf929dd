"""Hands back jobs whose worker stopped heartbeating.

A job whose lease expired goes back to ``queued`` with its attempt counted, or ends
``failed`` when its attempts are spent (so a job that kills its worker every time ends
instead of looping), or ``cancelled`` when a cancel was pending. This may run a job
twice — that is at-least-once delivery — but fencing lets only one attempt complete it.
"""

from __future__ import annotations

import logging

from jobwire.services.base import Service
from jobwire.store.base import Store

log = logging.getLogger("jobwire.services")


class Reaper(Service):
    name = "reaper"

    def __init__(self, store: Store, interval: float) -> None:
        super().__init__(interval)
        self.store = store

    async def run_once(self) -> int:
        changed = await self.store.reap()
        for job in changed:
            log.warning(
                "job %s: lease expired; now %s (attempt %d of %d)",
                job.id,
                job.state.value,
                job.attempts,
                job.max_attempts,
            )
        return len(changed)
