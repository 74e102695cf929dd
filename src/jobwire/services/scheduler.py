"""Fires the schedules the running code declares: every server and worker runs one.

No leader and no separate beat: each pass reads the schedules' states from the store,
works out the ticks due since each one's ``since`` (by its misfire policy, see
:mod:`jobwire.schedules`) and enqueues one job per tick under the idempotency key
``schedule:<name>:<tick>`` of the schedule's owner. Schedulers that race for a tick all
get the same job, so a tick has exactly one job however many processes fire it. The job
is enqueued before the tick is recorded: a process killed in between leaves the tick
due, and the next pass (anyone's) finds its job by the key and records it.

Only the declared schedules are looked at: a schedule removed from the code stops
firing once no running process declares it; its stored state stays (unlisted), and is
picked up again, pause included, if a schedule of that name comes back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from jobwire.errors import JobwireError, StoreUnavailable
from jobwire.schedules import Schedule
from jobwire.services.base import Service
from jobwire.store.base import Store

log = logging.getLogger("jobwire.services")

# Enqueue the schedule's job for the tick at this time; answers the job's id.
Fire = Callable[[Schedule, float], Awaitable[str]]


class Scheduler(Service):
    name = "scheduler"

    def __init__(
        self,
        store: Store,
        schedules: Mapping[str, Schedule],
        fire: Fire,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.schedules = schedules
        self.fire = fire
        self.clock = clock

    async def run_once(self) -> int:
        if not self.schedules:
            return 0
        now = self.clock()
        states = await self.store.track_schedules(list(self.schedules), now)
        fired = 0
        for name, schedule in self.schedules.items():
            state = states[name]
            if state.paused:
                continue
            for tick in schedule.ticks_to_fire(state.since, now):
                try:
                    job_id = await self.fire(schedule, tick)
                except StoreUnavailable:
                    raise
                except (JobwireError, ValueError) as exc:
                    # One schedule that cannot enqueue (its job gone from the code, its
                    # arguments no longer valid) must not hold up the others; its ticks
                    # stay due and are tried again on the next pass.
                    log.error("schedule %s: tick %s not fired: %s", name, tick, exc)
                    break
                await self.store.record_schedule_fire(name, tick, job_id, self.clock())
                fired += 1
        return fired
