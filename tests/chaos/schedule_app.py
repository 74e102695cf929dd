"""A schedule ticking every second, for the scheduler chaos test: servers run
``uvicorn tests.chaos.schedule_app:app`` and workers ``jobwire worker
tests.chaos.schedule_app:jobs``; every one of them fires the schedule. The store comes
from ``JOBWIRE_URL``."""

from __future__ import annotations

from fastapi import FastAPI

from jobwire import Jobwire

jobs = Jobwire()


@jobs.job
async def tick() -> None:
    return None


# "all" within a grace longer than the test: a tick due while every process was down
# fires when one is back, so every tick of the run must end up with its one job.
jobs.schedule("* * * * * *", tick, name="every-second", misfire="all", grace=600)

app = FastAPI(lifespan=jobs.lifespan)
app.include_router(jobs.router, prefix="/jobs")
