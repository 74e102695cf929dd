"""Jobs the unit and end-to-end tests run, registered on one module-level ``Jobwire``.

They live at module level in an importable module because process jobs are imported by
name in their job processes. Tests never use ``jobs`` itself: they take
``jobs.using("sqlite:///<tmp>/j.db", ...)``, which runs these same jobs over a fresh
database with the settings the test needs.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, conint

from jobwire import Backoff, JobContext, Jobwire, LimitExceeded

jobs = Jobwire("memory://", embedded_workers=True)

TINY_BACKOFF = Backoff(base=0.05, cap=0.2)

# Async jobs run in the test's own process, so they can leave marks here for the test.
ASYNC_CANCELLED: set[str] = set()


# -- progress and output, once per executor ------------------------------------------------


@jobs.job
async def report_async(ctx: JobContext, n: int) -> int:
    """Reports progress and an output for each step, then returns n."""
    for i in range(1, n + 1):
        ctx.progress(i, n, message=f"step {i}")
        ctx.output({"i": i})
        await asyncio.sleep(0)
    return n


@jobs.job(executor="thread")
def report_thread(ctx: JobContext, n: int) -> int:
    for i in range(1, n + 1):
        ctx.progress(i, n, message=f"step {i}")
        ctx.output({"i": i})
    return n


@jobs.job
def report_process(ctx: JobContext, n: int) -> int:
    for i in range(1, n + 1):
        ctx.progress(i, n, message=f"step {i}")
        ctx.output({"i": i})
    return n


# -- failures and retries --------------------------------------------------------------------


@jobs.job(retries=2, backoff=TINY_BACKOFF)
async def flaky(ctx: JobContext, failures: int) -> str:
    """Fails its first ``failures`` attempts."""
    if ctx.attempt <= failures:
        raise RuntimeError(f"attempt {ctx.attempt} fails on purpose")
    return f"ok on attempt {ctx.attempt}"


@jobs.job(retries=1, backoff=TINY_BACKOFF)
async def always_fails(message: str) -> None:
    raise ValueError(message)


@jobs.job(retries=2, backoff=TINY_BACKOFF)
async def typed_async(n: int) -> int:
    return n


@jobs.job(executor="thread", retries=2, backoff=TINY_BACKOFF)
def typed_thread(n: int) -> int:
    return n


@jobs.job(retries=2, backoff=TINY_BACKOFF)
def typed_process(n: int) -> int:
    return n


@jobs.job(retries=2, backoff=Backoff(base=0.05, cap=0.1))
def poison() -> None:
    """Kills its own job process, every time."""
    os._exit(1)


@jobs.job
async def noop() -> None:
    return None


# -- timeouts and cancellation ------------------------------------------------------------


def _spin_forever(ctx: JobContext) -> None:
    ctx.output({"pid": os.getpid()})
    deadline = time.monotonic() + 60  # a backstop far beyond any test's patience
    while time.monotonic() < deadline:
        sum(range(1000))  # CPU work that never looks at ctx.cancelled


@jobs.job(timeout=1)
def spin_with_timeout(ctx: JobContext) -> None:
    _spin_forever(ctx)


@jobs.job
def spin_ignoring_cancel(ctx: JobContext) -> None:
    _spin_forever(ctx)


@jobs.job(timeout=1)
def naps(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@jobs.job(timeout=0.5)
async def sleep_past_timeout(ctx: JobContext, seconds: float) -> None:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        ASYNC_CANCELLED.add(ctx.job_id)
        raise


@jobs.job
async def cooperative_async(ctx: JobContext) -> str:
    ctx.output("ready")
    while True:
        ctx.check_cancelled()
        await asyncio.sleep(0.01)


@jobs.job(executor="thread")
def cooperative_thread(ctx: JobContext) -> str:
    ctx.output("ready")
    while not ctx.wait_cancelled(0.01):
        pass
    ctx.check_cancelled()
    return "not reached"


@jobs.job
def cooperative_process(ctx: JobContext) -> str:
    ctx.output("ready")
    while not ctx.cancelled:
        time.sleep(0.01)
    ctx.check_cancelled()
    return "not reached"


@jobs.job
async def quick_async(ctx: JobContext, spins: int) -> int:
    """Yields to the loop ``spins`` times, then returns: a target for cancel races."""
    for _ in range(spins):
        await asyncio.sleep(0)
    return spins


@jobs.job(executor="thread")
def quick_thread(spins: int) -> int:
    return spins


@jobs.job
def quick_process(spins: int) -> int:
    return spins


# -- scheduling ------------------------------------------------------------------------------


@jobs.job(name="stamp")
async def stamp(label: str) -> str:
    return label


@jobs.job
async def blocks_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # noqa: ASYNC251 - the mistake the watchdog is there to notice


# -- for the HTTP tests ------------------------------------------------------------------------


@jobs.job
async def add(a: int, b: int = 1) -> int:
    """Adds two numbers."""
    return a + b


@jobs.job
async def sleeps(ctx: JobContext, seconds: float) -> float:
    """Sleeps ``seconds``; leaves its id in ASYNC_CANCELLED if it is cancelled first."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        ASYNC_CANCELLED.add(ctx.job_id)
        raise
    return seconds


@jobs.job
async def waits_for_cancel(ctx: JobContext) -> None:
    """Runs until cancelled."""
    while True:
        ctx.check_cancelled()
        await asyncio.sleep(0.01)


@jobs.job
def square(n: int) -> int:
    """Squares n in a job process."""
    return n * n


# -- declared types and size limits ------------------------------------------------------------


class Point(BaseModel):
    x: Annotated[int, Field(ge=0)]
    y: int = 0


@jobs.job
async def constrained(
    n: Annotated[int, Field(ge=1, le=100)],
    points: list[Point],
    count: conint(ge=0, lt=5) = 0,  # type: ignore[valid-type]
    mode: Literal["fast", "slow"] = "fast",
) -> int:
    """Every kind of declared constraint on its arguments."""
    return n + len(points) + count


@jobs.job(retries=2, backoff=TINY_BACKOFF)
async def returns_point_async(value: Any) -> Point:
    return value  # type: ignore[no-any-return]


@jobs.job(executor="thread", retries=2, backoff=TINY_BACKOFF)
def returns_point_thread(value: Any) -> Point:
    return value  # type: ignore[no-any-return]


@jobs.job(retries=2, backoff=TINY_BACKOFF)
def returns_point_process(value: Any) -> Point:
    return value  # type: ignore[no-any-return]


Oversize = Literal["result", "output", "caught_output", "message", "error"]


def _oversize(ctx: JobContext, what: Oversize, size: int) -> str:
    """Hands back ``size`` bytes the way ``what`` says."""
    text = "x" * size
    if what == "result":
        return text
    if what == "output":
        ctx.output(text)
    if what == "caught_output":
        try:
            ctx.output(text)
        except LimitExceeded:
            ctx.output("a smaller one instead")
    if what == "message":
        ctx.progress(1, 1, message=text)
    if what == "error":
        raise ValueError(text + " the end of the message")
    return "done"


@jobs.job(retries=2, backoff=TINY_BACKOFF)
async def oversize_async(ctx: JobContext, what: Oversize, size: int) -> str:
    return _oversize(ctx, what, size)


@jobs.job(executor="thread", retries=2, backoff=TINY_BACKOFF)
def oversize_thread(ctx: JobContext, what: Oversize, size: int) -> str:
    return _oversize(ctx, what, size)


@jobs.job(retries=2, backoff=TINY_BACKOFF)
def oversize_process(ctx: JobContext, what: Oversize, size: int) -> str:
    return _oversize(ctx, what, size)
