"""Hands back jobs whose worker stopped heartbeating.

A job whose lease expired goes back to ``queued`` with its attempt counted, or ends
``failed`` when its attempts are spent (so a job that kills its worker every time ends
instead of looping), or ``cancelled`` when a cancel was pending. This may run a job
twice — that is at-least-once delivery — but fencing lets only one attempt complete it.
After the store was away, it waits one lease before reaping again: workers could not
renew their leases while it was gone, and deserve the chance to before losing their jobs.

Each job it takes back is logged at WARNING on ``jobwire.services``, with the job's id,
name, attempt, the worker that held it (as far as the job's error names it) and what
became of it, as structured extras.
"""

from __future__ import annotations

import logging
import re
import time

from jobwire.model import Job, State
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
            _log_expired(job)
        return len(changed)


def _log_expired(job: Job) -> None:
    """One line per job taken back, from the job as the store returned it."""
    error = job.error or {}
    reason = str(error.get("message", "")) or "no heartbeat within its lease"
    # A lost run is handed back uncharged: back in the queue, the job counts one fewer.
    attempt = job.attempts + 1 if job.state is State.QUEUED else job.attempts
    log.warning(
        "job %s (%s) attempt %d/%d: lease expired, crash %d of %d (%s); now %s",
        job.id,
        job.job,
        attempt,
        job.max_attempts,
        job.crashes,
        job.max_crashes,
        reason,
        job.state.value,
        extra={
            "job_id": job.id,
            "job": job.job,
            "attempt": attempt,
            "crashes": job.crashes,
            "max_crashes": job.max_crashes,
            "max_attempts": job.max_attempts,
            "worker": job.worker_id or _worker_named(reason),
            "state": job.state.value,
            "error_type": str(error.get("type", "LeaseExpired")),
            "error_message": reason,
        },
    )


def _worker_named(reason: str) -> str | None:
    """The worker a lease-expiry message names ("… worker W stopped heartbeating …")."""
    found = _STOPPED_HEARTBEATING.search(reason)
    return None if found is None else found.group(1)


_STOPPED_HEARTBEATING = re.compile(r"worker (\S+) stopped heartbeating")
