"""The app the fan-out benchmark serves: the jobs router and one job that ticks.

``ticker`` waits for a gate file (so that every follower is connected before the first
event), then publishes ``events`` outputs, one every ``interval`` seconds on a fixed
grid starting ``offset`` seconds after the gate opened, and ends ``linger`` seconds
after its last output: the end of every stream (and its teardown) then comes after
every job's outputs, so the output latencies measure steady delivery.
"""

from __future__ import annotations

import asyncio
import gc
import os

from fastapi import FastAPI

from jobwire import JobContext, Jobwire

jobs = Jobwire()

if os.environ.get("FANOUT_SERVER_GC") == "off":
    # A diagnostic (run.py --server-gc off): shows what CPython's full collections, whose
    # pause grows with every open connection's objects, add to the latency tail.
    gc.disable()


@jobs.job
async def ticker(
    ctx: JobContext,
    events: int,
    interval: float,
    gate: str,
    offset: float = 0.0,
    linger: float = 0.0,
) -> int:
    loop = asyncio.get_running_loop()
    while not os.path.exists(gate):  # noqa: ASYNC110, ASYNC240 - a file, polled every 5 ms
        await asyncio.sleep(0.005)
    start = loop.time() + offset
    for i in range(events):
        await asyncio.sleep(max(0.0, start + i * interval - loop.time()))
        ctx.output({"i": i})
    await asyncio.sleep(linger)
    return events


app = FastAPI(lifespan=jobs.lifespan)
app.include_router(jobs.router, prefix="/jobs")
