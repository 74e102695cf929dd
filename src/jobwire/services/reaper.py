"""Hands back jobs whose worker stopped heartbeating.

A job whose lease expired goes back to ``queued`` with its attempt counted, or ends
``failed`` when its attempts are spent (so a job that kills its worker every time ends
instead of looping), or ``cancelled`` when a cancel was pending. This may run a job
twice — that is at-least-once delivery — but fencing lets only one attempt complete it.
After the store was away, it waits one lease before reaping again: workers could not
renew their leases while it was gone, and deserve the chance to before losing their jobs.
"""

from __future__ import annotations

import logging
import time

from jobwire.services.base import Service
from jobwire.store.base import Store

log = logging.getLogger("jobwire.services")


class Reaper(Service):
    name = "reaper"

    def __init__(self, store: Store, interval: float, lease: float = 0.0) -> None:
        super().__init__(interval)
        self.store = store
        self.lease = lease
        self._after_outage = False
        self._hold_until = 0.0

    def interrupted(self) -> None:
        self._after_outage = True

    async def run_once(self) -> int:
        if self._after_outage:
            # No worker could renew a lease while the store was away: once it is back,
            # give them one lease to do so before taking their jobs away.
            await self.store.ping()  # raises StoreUnavailable while it is still away
            self._after_outage = False
            self._hold_until = time.monotonic() + self.lease
        if time.monotonic() < self._hold_until:
            return 0
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
