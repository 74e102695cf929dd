"""A fan-in for the workflow chaos test: standalone workers run ``jobwire worker
tests.chaos.workflow_app:jobs`` (each one also moves workflows on); the test submits
the workflow. The store comes from ``JOBWIRE_URL``."""

from __future__ import annotations

import asyncio

from jobwire import JobContext, Jobwire
from tests.chaos.effects import record

jobs = Jobwire()


@jobs.job(retries=2)
async def part(n: int) -> int:
    await asyncio.sleep(0.005)
    return n


@jobs.job(retries=2)
async def fan_in(ctx: JobContext, previous: list[int]) -> int:
    """Leaves a side effect per run: it may run twice, it must complete once."""
    record("start", ctx)
    await asyncio.sleep(0.2)
    record("end", ctx)
    return sum(previous) if previous == sorted(previous) else -1  # -1: out of order
