"""The application the chaos tests crash: a FastAPI app with embedded workers, and the
jobs that standalone workers (``python -m tests.chaos.worker_main``) run.

The store comes from ``JOBWIRE_URL``. Every job leaves side effects (see
:mod:`tests.chaos.effects`): one line per start and per end of an attempt.
"""

from __future__ import annotations

import asyncio
import os
import time

from fastapi import FastAPI

from jobwire import JobContext, Jobwire
from tests.chaos.effects import has_run_before, record

jobs = Jobwire()


@jobs.job(executor="process", retries=2)
def crunch(ctx: JobContext, seconds: float) -> str:
    """A job process working for ``seconds``; says it has started with an output event."""
    record("start", ctx)
    ctx.output({"started": os.getpid()})
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.wait_cancelled(0.05)
    record("end", ctx)
    return "crunched"


@jobs.job(retries=2)
async def sleeper(ctx: JobContext, seconds: float) -> str:
    """An async job of a fixed length."""
    record("start", ctx)
    ctx.output({"started": os.getpid()})
    await asyncio.sleep(seconds)
    record("end", ctx)
    return "slept"


@jobs.job
async def slow_once(ctx: JobContext, seconds: float) -> str:
    """Long the first time; quick when an earlier attempt was handed back (it resumes)."""
    resumed = has_run_before(ctx.job_id)
    record("start", ctx)
    ctx.output({"started": os.getpid(), "resumed": resumed})
    await asyncio.sleep(0.1 if resumed else seconds)
    record("end", ctx)
    return "resumed" if resumed else "finished"


@jobs.job(concurrency=1)
async def solo(ctx: JobContext, seconds: float) -> str:
    """At most one runs at once, over every worker; long the first time, quick resumed."""
    resumed = has_run_before(ctx.job_id)
    record("start", ctx)
    ctx.output({"started": os.getpid(), "resumed": resumed})
    await asyncio.sleep(0.1 if resumed else seconds)
    record("end", ctx)
    return "solo"


@jobs.job(executor="process")
def crunch_once(ctx: JobContext, seconds: float) -> str:
    """``slow_once`` in a job process."""
    resumed = has_run_before(ctx.job_id)
    record("start", ctx)
    ctx.output({"started": os.getpid(), "resumed": resumed})
    deadline = time.monotonic() + (0.1 if resumed else seconds)
    while time.monotonic() < deadline:
        ctx.wait_cancelled(0.05)
    record("end", ctx)
    return "resumed" if resumed else "finished"


@jobs.job(executor="thread")
def blocking(ctx: JobContext, seconds: float) -> str:
    """Blocking I/O that never looks at ``ctx.cancelled``: nothing can stop it early."""
    resumed = has_run_before(ctx.job_id)
    record("start", ctx)
    ctx.output({"started": os.getpid(), "resumed": resumed})
    time.sleep(0.1 if resumed else seconds)
    record("end", ctx)
    return "resumed" if resumed else "finished"


@jobs.job
async def poison(ctx: JobContext) -> None:
    """Kills the worker that runs it, every time."""
    record("start", ctx)
    os._exit(1)


@jobs.job
async def noop(ctx: JobContext, n: int) -> int:
    """A healthy job, without retries: a crash the poison job causes is not its fault."""
    record("start", ctx)
    record("end", ctx)
    return n


@jobs.job(max_crashes=11)
async def work(ctx: JobContext, ms: int) -> int:
    """A short job without retries: being lost in a server crash is not its fault, and
    ten crashes cannot spend its crash budget (the default, 3, could be by bad luck)."""
    record("start", ctx)
    await asyncio.sleep(ms / 1000)
    record("end", ctx)
    return ms


app = FastAPI(lifespan=jobs.lifespan)
app.include_router(jobs.router, prefix="/jobs")
