"""Async jobs for the soaks that run many standalone workers
(``jobwire worker tests.chaos.fleet_app:jobs``).

With no process or thread jobs, a worker is a single process, so the replacement of a
killed one costs one interpreter start, and ``kill -9`` of it leaves nothing behind.
The store comes from ``JOBWIRE_URL``.
"""

from __future__ import annotations

import asyncio
import time

from jobwire import JobContext, Jobwire
from tests.chaos.effects import record

# Long enough that a worker always holds jobs mid-run when it is killed, and that four
# workers (100 jobs at once each) need at least 20,000 / 400 x 0.25 = 12.5 s however fast
# the store is, so that a kill every 2 s falls several times inside the drain.
TALLY_SECONDS = 0.25

jobs = Jobwire()


# A crash budget above the kills: a kill -9 costs each job its worker held a crash, not a
# retry, and the test kills workers at random, not jobs that kill them.
@jobs.job(max_crashes=20)
async def tally(ctx: JobContext, n: int) -> int:
    """Leaves a start and an end line around a short wait; returns its argument."""
    record("start", ctx)
    await asyncio.sleep(TALLY_SECONDS)
    record("end", ctx)
    return n


@jobs.job(max_crashes=20)
async def pickup(ctx: JobContext) -> float:
    """The time its first statement ran (this machine's clock), to measure its pickup."""
    return time.time()
