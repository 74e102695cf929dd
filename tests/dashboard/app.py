"""Jobs and an app for the dashboard tests: one that steps with progress and outputs
until it is cancelled or done, one that fails with a traceback, one that returns."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from jobwire import JobContext, Jobwire

jobs = Jobwire()
PREFIX = "/jobs"


@jobs.job
async def steps(ctx: JobContext, n: int, pace: float = 0.25) -> int:
    """``n`` steps at its own pace, each an output and a progress report."""
    for i in range(1, n + 1):
        ctx.check_cancelled()
        ctx.output({"step": i})
        ctx.progress(i, n, message=f"step {i}")
        await asyncio.sleep(pace)
    return n


@jobs.job
async def boom(reason: str) -> None:
    raise ValueError(f"boom: {reason}")


@jobs.job
async def quick(x: int) -> int:
    return x * 2


def build(served: Jobwire) -> FastAPI:
    app = FastAPI(title="dashboard tests", lifespan=served.lifespan)
    app.include_router(served.router, prefix=PREFIX)
    return app
