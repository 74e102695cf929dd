"""The demo served by ``jobwire demo``: four quick jobs that show what jobwire does.

- ``crawl``: an ``async def`` job on the worker's loop, with progress and partial output;
- ``crunch``: a CPU-bound ``def`` job in a job process, with progress;
- ``flaky``: fails on its first two attempts, then succeeds (``retries=2``);
- ``too_slow``: a CPU loop that outlives its ``timeout=2`` and is killed.

The jobs live at module level so job processes can import them. ``jobwire demo`` runs
them over its own SQLite file; ``uvicorn jobwire.demo:app`` serves the same app on
``./jobwire-demo.db``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import Field

from jobwire.app import JobHandle, Jobwire
from jobwire.context import JobContext
from jobwire.model import Job

jobs = Jobwire(
    "sqlite:///./jobwire-demo.db",
    process_concurrency=2,
    shutdown_grace_seconds=2.0,
    cancel_grace_seconds=2.0,
)


@jobs.job
async def crawl(
    ctx: JobContext,
    pages: Annotated[int, Field(ge=1, le=100)] = 8,
    pause: Annotated[float, Field(ge=0, le=5)] = 0.4,
) -> dict[str, int]:
    """Fetch some pages (simulated): one ``output`` event per page, and progress."""
    words = 0
    for page in range(1, pages + 1):
        await asyncio.sleep(pause)
        count = 100 + (page * 37) % 250
        words += count
        ctx.output({"page": page, "url": f"https://example.com/{page}", "words": count})
        ctx.progress(page, pages, message=f"page {page}")
    return {"pages": pages, "words": words}


@jobs.job(timeout=60)
def crunch(ctx: JobContext, n: Annotated[int, Field(ge=1, le=50_000_000)] = 3_000_000) -> int:
    """Sum of squares below n, in a job process: CPU work never blocks the server."""
    total = 0
    step = max(1, n // 20)
    for i in range(n):
        total += i * i
        if i % step == 0:
            ctx.progress(i, n)
    ctx.progress(n, n)
    return total


@jobs.job(retries=2, backoff=0.5)
async def flaky(ctx: JobContext, failures: Annotated[int, Field(ge=0, le=10)] = 2) -> str:
    """Fails on its first ``failures`` attempts, then succeeds: retries with backoff."""
    if ctx.attempt <= failures:
        raise RuntimeError(f"attempt {ctx.attempt} fails on purpose")
    return f"succeeded on attempt {ctx.attempt}"


@jobs.job(timeout=2)
def too_slow(ctx: JobContext, seconds: Annotated[float, Field(ge=0, le=60)] = 30.0) -> int:
    """Spins the CPU for ``seconds``; its 2 s timeout kills its process first."""
    deadline = time.monotonic() + seconds
    spins = 0
    while time.monotonic() < deadline:
        spins += 1
    return spins


@jobs.job
async def tidy(ctx: JobContext) -> str:
    """What a periodic clean-up would do; the demo fires it every minute (a schedule)."""
    return f"tidied at attempt {ctx.attempt}"


# Every server and worker of the demo fires it; each minute gives one job, however many.
jobs.schedule("* * * * *", tidy, name="tidy-every-minute")


async def seed(app_jobs: Jobwire) -> list[Job]:
    """Enqueue one of each demo job."""
    handles: list[JobHandle[Any]] = [
        await app_jobs.enqueue("crawl", {"pages": 8}),
        await app_jobs.enqueue("crunch", {"n": 3_000_000}),
        await app_jobs.enqueue("flaky", {"failures": 2}),
        await app_jobs.enqueue("too_slow", {"seconds": 30}),
    ]
    return [handle.job for handle in handles]


def create_app(app_jobs: Jobwire | None = None) -> FastAPI:
    """The demo app over ``app_jobs`` (a :meth:`Jobwire.using` copy of ``jobs``)."""
    app_jobs = app_jobs or jobs

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with app_jobs.lifespan(app):
            app.state.demo_jobs = await seed(app_jobs)
            yield

    app = FastAPI(
        title="jobwire demo",
        description="Submit a job with POST /jobs, then follow it with GET /jobs/{id}?wait=30.",
        lifespan=lifespan,
        docs_url=None,  # served below from the Swagger UI files shipped with jobwire
        redoc_url=None,
    )
    app.include_router(app_jobs.router, prefix="/jobs")
    app.include_router(app_jobs.docs_router)
    return app


def __getattr__(name: str) -> Any:
    # ``uvicorn jobwire.demo:app`` builds the app on first use, not in every job process.
    if name == "app":
        value = create_app()
        globals()["app"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
