"""Jobs for the retry rules, expiry and soft time limits, once per executor.

Registered on the support ``jobs`` (import this module before building an app from it);
module-level so that process jobs import by name in their job processes. Runs are
counted in a file named by the test, the one memory the three executors share.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Literal

from jobwire import JobContext, Retry, SoftTimeLimit
from tests.support.jobs import TINY_BACKOFF, jobs

Raise = Literal["timeout_once", "value", "key", "both"]


class TimeoutAndValue(TimeoutError, ValueError):
    """Matches both retry_on and fail_on: fail_on must win."""


def count_run(marker: str) -> int:
    """Append a line to the marker file; how many runs there have been, this one included."""
    path = Path(marker)
    with path.open("a") as file:
        file.write("run\n")
    return len(path.read_text().splitlines())


def _picky(marker: str, kind: Raise) -> str:
    runs = count_run(marker)
    if kind == "timeout_once" and runs == 1:
        raise TimeoutError("slow upstream")
    if kind == "value":
        raise ValueError("bad input: retrying cannot fix it")
    if kind == "key":
        raise KeyError("not in retry_on")
    if kind == "both":
        raise TimeoutAndValue("both a timeout and a bad value")
    return f"ok after {runs} runs"


@jobs.job(retries=3, retry_on=TimeoutError, fail_on=(ValueError,), backoff=TINY_BACKOFF)
async def picky_async(marker: str, kind: Raise) -> str:
    return _picky(marker, kind)


@jobs.job(
    executor="thread", retries=3, retry_on=TimeoutError, fail_on=(ValueError,), backoff=TINY_BACKOFF
)
def picky_thread(marker: str, kind: Raise) -> str:
    return _picky(marker, kind)


@jobs.job(retries=3, retry_on=TimeoutError, fail_on=(ValueError,), backoff=TINY_BACKOFF)
def picky_process(marker: str, kind: Raise) -> str:
    return _picky(marker, kind)


def _snooze(ctx: JobContext, marker: str, times: int, charge: bool) -> dict[str, int]:
    runs = count_run(marker)
    if runs <= times:
        raise Retry(delay=0.05, charge=charge)
    return {"runs": runs, "attempt": ctx.attempt}


@jobs.job
async def snooze_async(ctx: JobContext, marker: str, times: int, charge: bool) -> dict[str, int]:
    return _snooze(ctx, marker, times, charge)


@jobs.job(executor="thread")
def snooze_thread(ctx: JobContext, marker: str, times: int, charge: bool) -> dict[str, int]:
    return _snooze(ctx, marker, times, charge)


@jobs.job
def snooze_process(ctx: JobContext, marker: str, times: int, charge: bool) -> dict[str, int]:
    return _snooze(ctx, marker, times, charge)


@jobs.job(expires=3600)
async def expiring(marker: str) -> str:
    count_run(marker)
    return "ran"


SOFT = 0.3


@jobs.job(soft_timeout=SOFT, timeout=20)
async def soft_async(ctx: JobContext) -> dict[str, bool]:
    try:
        await asyncio.sleep(30)
    except SoftTimeLimit:
        return {"saved": True, "soft": ctx.soft_limit_reached, "cancelled": ctx.cancelled}
    return {"saved": False, "soft": False, "cancelled": False}


def _soft_sync(ctx: JobContext) -> dict[str, bool]:
    deadline = time.monotonic() + 30
    while not ctx.cancelled and time.monotonic() < deadline:
        ctx.wait_cancelled(0.05)
    return {"saved": ctx.cancelled, "soft": ctx.soft_limit_reached, "cancelled": ctx.cancelled}


@jobs.job(executor="thread", soft_timeout=SOFT, timeout=20)
def soft_thread(ctx: JobContext) -> dict[str, bool]:
    return _soft_sync(ctx)


@jobs.job(soft_timeout=SOFT, timeout=20)
def soft_process(ctx: JobContext) -> dict[str, bool]:
    return _soft_sync(ctx)


@jobs.job(soft_timeout=SOFT, timeout=20)
def soft_checked(ctx: JobContext) -> str:
    """Lets SoftTimeLimit from check_cancelled() fail the attempt (no retries)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.01)
    return "never"
