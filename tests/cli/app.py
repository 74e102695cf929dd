"""The jobs the CLI tests run: ``jobwire worker tests.cli.app:jobs``."""

from __future__ import annotations

import asyncio
import gc

from fastapi import FastAPI

from jobwire import JobContext, Jobwire

jobs = Jobwire(process_concurrency=1, shutdown_grace_seconds=5.0, cancel_grace_seconds=1.0)


@jobs.job
async def add(a: int, b: int) -> int:
    return a + b


@jobs.job
async def count(ctx: JobContext, n: int) -> int:
    """Reports progress and one output per step."""
    for i in range(1, n + 1):
        ctx.output({"step": i})
        ctx.progress(i, n, message=f"step {i}")
    return n


@jobs.job
async def boom(ctx: JobContext, message: str = "kaboom") -> None:
    raise ValueError(message)


@jobs.job(retries=1, backoff=0.0)
async def flaky(ctx: JobContext) -> int:
    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return ctx.attempt


@jobs.job
async def until_cancelled(ctx: JobContext) -> None:
    """Runs until asked to stop, then stops cooperatively."""
    while not ctx.cancelled:  # noqa: ASYNC110 - a flag set from another thread
        await asyncio.sleep(0.01)
    ctx.check_cancelled()


@jobs.job
def square(ctx: JobContext, x: int) -> int:
    """A process job: the job process imports this module from the worker's cwd."""
    ctx.progress(1, 1)
    return x * x


# Not a Jobwire: `jobwire worker tests.cli.app:web` refuses it, naming `jobs`.
web = FastAPI(lifespan=jobs.lifespan)
web.include_router(jobs.router, prefix="/jobs")


@jobs.job
async def collector() -> dict[str, object]:
    """How the collector of the process running this job is set."""
    return {"threshold": list(gc.get_threshold()), "frozen": gc.get_freeze_count()}
